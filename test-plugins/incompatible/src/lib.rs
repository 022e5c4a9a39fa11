//! A library that looks like a plugin built against an incompatible
//! `plugin-api`: it exports a root module under the same name and type name
//! as `plugin_api::abi::PluginRoot`, but with a different layout and crate
//! version. The host must refuse it with a short layout error.

#![allow(non_camel_case_types)]

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::RStr;
use abi_stable::{
    StableAbi, declare_root_module_statics, export_root_module, package_version_strings,
};

#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRoot_Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    pub name: RStr<'static>,
    /// Where the real module has `version` and `init`, this one has a number.
    #[sabi(last_prefix_field)]
    pub generation: u64,
}

impl RootModule for PluginRoot_Ref {
    declare_root_module_statics! {PluginRoot_Ref}
    const BASE_NAME: &'static str = "plugin";
    const NAME: &'static str = "plugin";
    const VERSION_STRINGS: abi_stable::sabi_types::VersionStrings = package_version_strings!();
}

#[export_root_module]
pub fn root() -> PluginRoot_Ref {
    PluginRoot {
        name: RStr::from_str("incompatible"),
        generation: 2,
    }
    .leak_into_prefix()
}
