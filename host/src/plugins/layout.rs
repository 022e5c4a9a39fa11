//! The layout check of a plugin's root module, in whichever direction of
//! plugin-api's compatibility rule applies.
//!
//! abi_stable compares the host's layout (the interface) with the
//! library's (the implementation), and lets a prefix type (the root module,
//! every `#[sabi_trait]` vtable) have more fields in the library than in the
//! host, never fewer ("too many fields"): a library may be newer than its
//! host, not older. plugin-api promises both ways within a minor version: a
//! host of a later 0.2.x loads a plugin built against 0.2.0, whose root
//! module and vtables lack what the later release appended. A release only
//! appends, so one side has everything the other has, in every prefix type:
//! when the library's layout does not pass as the implementation of the
//! host's, the host's is checked as the implementation of the library's.
//! Either check alone is abi_stable's own, with the older side as the
//! interface; a library newer in one type and older in another passes
//! neither. What an older library lacks, the host reads through plugin-api's
//! missing-field defaults (`None`, the default body of a method).

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::{AbiInstabilityErrors, check_layout_compatibility};
use abi_stable::library::{LibHeader, LibraryError};
use abi_stable::std_types::RBoxError;
use abi_stable::type_layout::TypeLayout;
use plugin_api::abi::PluginRoot_Ref;

/// Checks the version and layout of the library's root module, as
/// `LibHeader::init_root_module` does but in both directions, and
/// initialises it.
pub fn init_root_module(header: &LibHeader) -> Result<PluginRoot_Ref, LibraryError> {
    if let Some(theirs) = header.layout() {
        compatible(<PluginRoot_Ref as StableAbi>::LAYOUT, theirs)
            .map_err(|e| LibraryError::AbiInstability(RBoxError::from_fmt(&e)))?;
    }
    // SAFETY: the layout was checked above, as abi_stable's own loader
    // checks it, in the direction of whichever side is older; a library
    // that left its layout out (`IsLayoutChecked::No`) is taken unchecked,
    // as abi_stable's loader takes it.
    unsafe { header.init_root_module_with_unchecked_layout::<PluginRoot_Ref>() }
}

/// Whether a library's `theirs` may be used as the host's `ours`: with the
/// library as the newer side, else as the older one. The error is the
/// report of the usual direction, which names what the library lacks or
/// has different.
fn compatible(
    ours: &'static TypeLayout,
    theirs: &'static TypeLayout,
) -> Result<(), AbiInstabilityErrors> {
    match check_layout_compatibility(ours, theirs) {
        Ok(()) => Ok(()),
        Err(as_newer) => check_layout_compatibility(theirs, ours).map_err(|_| as_newer),
    }
}

#[cfg(test)]
mod tests {
    //! Each test has types of its own: abi_stable remembers every pair of
    //! prefix types it found compatible, for the life of the process. The
    //! types are there for their layouts; nothing reads their fields.
    #![allow(non_camel_case_types, dead_code)]

    use super::*;

    /// A root module and a vtable, each with a field appended or not.
    macro_rules! version {
        ($module:ident, root: $($root:ident)?, vtable: $($vtable:ident)?) => {
            mod $module {
                use abi_stable::StableAbi;

                #[repr(C)]
                #[derive(StableAbi)]
                #[sabi(kind(Prefix))]
                pub struct Root {
                    #[sabi(last_prefix_field)]
                    pub init: u64,
                    $(pub $root: u64,)?
                }

                #[repr(C)]
                #[derive(StableAbi)]
                #[sabi(kind(Prefix))]
                pub struct Vtable {
                    #[sabi(last_prefix_field)]
                    pub call: u64,
                    $(pub $vtable: u64,)?
                }

                #[repr(C)]
                #[derive(StableAbi)]
                pub struct Module {
                    pub root: Root_Ref,
                    pub vtable: Vtable_Ref,
                }
            }
        };
    }

    fn layout<T: StableAbi>() -> &'static TypeLayout {
        T::LAYOUT
    }

    #[test]
    fn an_older_or_newer_library_passes_either_way() {
        version!(older_a, root:, vtable:);
        version!(newer_a, root: appended, vtable: appended);
        version!(older_b, root:, vtable:);
        version!(newer_b, root: appended, vtable: appended);
        // The host older, as abi_stable checks it; then the host newer.
        compatible(layout::<older_a::Module>(), layout::<newer_a::Module>()).unwrap();
        compatible(layout::<newer_b::Module>(), layout::<older_b::Module>()).unwrap();
    }

    #[test]
    fn a_library_newer_in_one_type_and_older_in_another_is_refused() {
        version!(host, root: appended, vtable:);
        version!(library, root:, vtable: appended);
        let refused = compatible(layout::<host::Module>(), layout::<library::Module>());
        assert!(refused.unwrap_err().to_string().contains("too many fields"));
    }
}
