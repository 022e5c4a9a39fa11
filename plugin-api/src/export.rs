//! The glue behind [`export_plugin!`](crate::export_plugin): the root module
//! and the `extern "C"` entry points, generic over the plugin type.

use abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, ROk, RResult, RStr, RString, RVec};

use crate::abi::{
    HookFailure, HookSpec, HostInfo, Outcome, PluginBox, PluginObject, PluginObject_TO, PluginRoot,
    PluginRoot_Ref, RequestFfi,
};
use std::mem::ManuallyDrop;

use crate::panic::{catch, drop_quietly};
use crate::{Hook, Host, Plugin, Reply, Request};

/// The symbol name under which a library exports its [`LibHeader`]; this is
/// what [`export_plugin!`](crate::export_plugin) uses.
pub const ROOT_MODULE_EXPORT_NAME: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// The header [`export_plugin!`](crate::export_plugin) places in a plugin library.
#[doc(hidden)]
pub const fn lib_header<P: Plugin>() -> LibHeader {
    // SAFETY: the constructor returns a `PluginRoot_Ref`, the module type
    // named here, and the layout is checked by the loader (`Yes`).
    unsafe { LibHeader::from_constructor::<PluginRoot_Ref>(load_root::<P>, CheckTypeLayout::Yes) }
}

extern "C" fn load_root<P: Plugin>() -> RootModuleResult {
    __call_root_module_loader(root_module::<P>)
}

fn root_module<P: Plugin>() -> PluginRoot_Ref {
    PluginRoot {
        name: RStr::from_str(P::NAME),
        version: RStr::from_str(P::VERSION),
        init: init::<P>,
    }
    .leak_into_prefix()
}

/// Starts plugin `P` in this process, through the same glue a host uses
/// for a loaded library: for testing a plugin, fuzzing and benchmarking
/// a host without a dynamic library.
pub fn instantiate<P: Plugin>(settings: &str, host: &HostInfo<'_>) -> Result<PluginBox, String> {
    init::<P>(RStr::from_str(settings), host)
        .into_result()
        .map_err(RString::into_string)
}

extern "C" fn init<P: Plugin>(
    settings: RStr<'_>,
    host: &HostInfo<'_>,
) -> RResult<PluginBox, RString> {
    let host = Host {
        server_name: host.server_name.as_str().to_owned(),
        host_version: host.host_version.as_str().to_owned(),
    };
    let built = catch(|| -> Result<Adapter<P>, String> {
        let settings: P::Settings = toml::from_str(settings.as_str())
            .map_err(|e| format!("invalid settings: {}", e.message()))?;
        let plugin = P::new(settings, &host)?;
        Ok(Adapter::new(plugin))
    });
    match built {
        Ok(Ok(adapter)) => ROk(PluginObject_TO::from_value(adapter, TD_Opaque)),
        Ok(Err(message)) => RErr(message.into()),
        Err(panic) => RErr(format!("panicked while starting: {panic}").into()),
    }
}

/// A plugin together with its hooks, as the host calls it.
struct Adapter<P: Plugin> {
    /// Dropped by hand, under a panic guard: the host drops this object
    /// through an `extern "C"` vtable entry, where unwinding would abort.
    inner: ManuallyDrop<Inner<P>>,
    specs: RVec<HookSpec>,
    /// Capture-group names of each hook, resolved once here so that
    /// handlers can look groups up by name without the host's help.
    names: Vec<Vec<(String, usize)>>,
}

struct Inner<P: Plugin> {
    plugin: P,
    hooks: Vec<Hook<P>>,
}

impl<P: Plugin> Drop for Adapter<P> {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken exactly once, here, and never used after.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        drop_quietly(inner);
    }
}

impl<P: Plugin> Adapter<P> {
    fn new(plugin: P) -> Self {
        let hooks = plugin.hooks();
        let specs = hooks
            .iter()
            .map(|h| HookSpec {
                pattern: h.pattern.as_str().into(),
                blocking: h.blocking,
            })
            .collect();
        // An invalid pattern simply yields no names here: the host compiles
        // every pattern itself and refuses the plugin with a clear error.
        let names = hooks
            .iter()
            .map(|h| match regex::Regex::new(&h.pattern) {
                Ok(re) => re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.map(|n| (n.to_owned(), i)))
                    .collect(),
                Err(_) => Vec::new(),
            })
            .collect();
        Adapter {
            inner: ManuallyDrop::new(Inner { plugin, hooks }),
            specs,
            names,
        }
    }
}

impl<P: Plugin> PluginObject for Adapter<P> {
    fn hooks(&self) -> RVec<HookSpec> {
        self.specs.clone()
    }

    fn call(
        &self,
        hook: usize,
        request: &RequestFfi<'_>,
        out: &mut RString,
    ) -> RResult<Outcome, HookFailure> {
        let (Some(h), Some(names)) = (self.inner.hooks.get(hook), self.names.get(hook)) else {
            return RErr(HookFailure::Error(format!("no hook number {hook}").into()));
        };
        let start = out.len();
        // The error is turned into text inside the guard: its `Display`
        // and `Drop` are plugin code too.
        let result = catch(|| {
            let mut reply = Reply::new(out);
            let req = Request::new(request, names);
            (h.handler)(&self.inner.plugin, &req, &mut reply)
                .map(|()| reply.wants_close())
                .map_err(|e| e.to_string())
        });
        // A failed handler's partial reply is dropped: the client gets the
        // error line alone.
        match result {
            Ok(Ok(close)) => ROk(Outcome { close }),
            Ok(Err(message)) => {
                out.drain(start..);
                RErr(HookFailure::Error(message.into()))
            }
            Err(panic) => {
                out.drain(start..);
                RErr(HookFailure::Panic(panic.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_name_is_the_one_abi_stable_looks_up() {
        assert_eq!(
            ROOT_MODULE_EXPORT_NAME,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
