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
use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::library::{LibHeader, LibraryError};
use abi_stable::std_types::RBoxError;
use plugin_api::abi::PluginRoot_Ref;

/// Checks the version and layout of the library's root module, as
/// `LibHeader::init_root_module` does but in both directions, and
/// initialises it.
pub fn init_root_module(header: &LibHeader) -> Result<PluginRoot_Ref, LibraryError> {
    if let Some(theirs) = header.layout() {
        let ours = <PluginRoot_Ref as StableAbi>::LAYOUT;
        if let Err(as_newer) = check_layout_compatibility(ours, theirs)
            && check_layout_compatibility(theirs, ours).is_err()
        {
            // The report of the usual direction: it names what the library
            // lacks or has different.
            return Err(LibraryError::AbiInstability(RBoxError::from_fmt(&as_newer)));
        }
    }
    // SAFETY: the layout was checked above, as abi_stable's own loader
    // checks it, in the direction of whichever side is older; a library
    // that left its layout out (`IsLayoutChecked::No`) is taken unchecked,
    // as abi_stable's loader takes it.
    unsafe { header.init_root_module_with_unchecked_layout::<PluginRoot_Ref>() }
}
