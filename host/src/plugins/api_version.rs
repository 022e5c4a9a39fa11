//! Which `plugin-api` a library was built against, read before abi_stable
//! compares layouts.
//!
//! abi_stable accepts a 0.x library whose minor version is higher than the
//! host's and leaves the refusal to its layout check, which then reports
//! the version difference of every type, once per path to it, in hundreds
//! of lines. The root module's header carries the version strings of the
//! crate that declared it, `plugin-api`, so the host can say it in one line.

use abi_stable::library::{RootModule, RootModuleConsts};
use abi_stable::sabi_types::{VersionNumber, VersionStrings};
use plugin_api::abi::PluginRoot_Ref;

use super::LoadErrorKind;

/// Longest version string quoted from a library.
const MAX_QUOTED: usize = 64;

/// Refuses a library whose root module comes from a `plugin-api` this host
/// cannot load: another major version, or, before 1.0, another minor one.
/// A root module of another name, or versions that do not parse, are left
/// to abi_stable's own checks.
pub fn check(library: &RootModuleConsts) -> Result<(), LoadErrorKind> {
    if library.name().as_str() != PluginRoot_Ref::NAME {
        return Ok(());
    }
    check_versions(PluginRoot_Ref::VERSION_STRINGS, library.version_strings())
}

fn check_versions(host: VersionStrings, plugin: VersionStrings) -> Result<(), LoadErrorKind> {
    let (Ok(ours), Ok(theirs)) = (VersionNumber::new(host), VersionNumber::new(plugin)) else {
        return Ok(());
    };
    let compatible = ours.major == theirs.major && (ours.major != 0 || ours.minor == theirs.minor);
    if compatible {
        return Ok(());
    }
    let series = if ours.major == 0 {
        format!("0.{}.x", ours.minor)
    } else {
        format!("{}.x", ours.major)
    };
    Err(LoadErrorKind::ApiVersion {
        plugin: plugin.version.as_str().chars().take(MAX_QUOTED).collect(),
        host: format!("{series} (it has {})", host.version.as_str()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(host: &'static str, plugin: &'static str) -> Result<(), String> {
        check_versions(VersionStrings::new(host), VersionStrings::new(plugin))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn same_series_passes_and_others_are_named() {
        assert!(check("0.1.0", "0.1.7").is_ok());
        assert!(check("1.2.0", "1.0.3").is_ok());
        assert_eq!(
            check("0.1.0", "0.2.0").unwrap_err(),
            "built against plugin-api 0.2.0, but this host needs plugin-api 0.1.x (it has \
             0.1.0); rebuild the plugin against the host's plugin-api"
        );
        assert!(
            check("0.2.0", "0.1.0")
                .unwrap_err()
                .contains("needs plugin-api 0.2.x")
        );
        assert!(
            check("1.0.0", "2.0.0")
                .unwrap_err()
                .contains("needs plugin-api 1.x")
        );
        assert!(
            check("0.1.0", "not a version").is_ok(),
            "left to abi_stable"
        );
    }
}
