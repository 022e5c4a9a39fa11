//! The glue behind [`export_plugin!`](crate::export_plugin): the root module
//! and the `extern "C"` entry points, generic over the plugin type.

use std::mem::ManuallyDrop;

use abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RErr, RNone, ROk, RResult, RSome, RStr, RString, RVec};

use crate::abi::{
    ClientFfi, HookFailure, HookSpec, HostInfo, Outcome, PendingReply_TO, PluginBox, PluginObject,
    PluginObject_TO, PluginRoot, PluginRoot_Ref, RequestFfi, StatePtr,
};
use crate::later::Pending;
use crate::panic::{catch, drop_quietly};
use crate::{Client, Hook, Host, Plugin, Pusher, Reply, Request};

/// The symbol name under which a library exports its [`LibHeader`]; this is
/// what [`export_plugin!`](crate::export_plugin) uses.
pub const ROOT_MODULE_EXPORT_NAME: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// A plugin type together with the name and version it is exported under;
/// [`export_plugin!`](crate::export_plugin) implements it.
#[doc(hidden)]
pub trait Export: 'static {
    type Plugin: Plugin;
    const NAME: &'static str;
    const VERSION: &'static str;
}

/// The header [`export_plugin!`](crate::export_plugin) places in a plugin library.
#[doc(hidden)]
pub const fn lib_header<E: Export>() -> LibHeader {
    // SAFETY: the constructor returns a `PluginRoot_Ref`, the module type
    // named here, and the layout is checked by the loader (`Yes`).
    unsafe { LibHeader::from_constructor::<PluginRoot_Ref>(load_root::<E>, CheckTypeLayout::Yes) }
}

extern "C" fn load_root<E: Export>() -> RootModuleResult {
    __call_root_module_loader(root_module::<E>)
}

fn root_module<E: Export>() -> PluginRoot_Ref {
    PluginRoot {
        name: RStr::from_str(E::NAME),
        version: RStr::from_str(E::VERSION),
        init: init::<E::Plugin>,
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
    let built = catch(|| -> Result<Adapter<P>, String> {
        let host = Host {
            server_name: host.server_name.as_str().to_owned(),
            host_version: host.host_version.as_str().to_owned(),
            pusher: Pusher::new(host.host.clone()),
        };
        let settings: P::Settings = toml::from_str(settings.as_str())
            .map_err(|e| format!("invalid settings: {}", e.message()))?;
        let plugin = P::new(settings, &host)?;
        Ok(Adapter::new(plugin, host.pusher))
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
}

struct Inner<P: Plugin> {
    plugin: P,
    hooks: Vec<Hook<P>>,
    pusher: Pusher,
}

impl<P: Plugin> Drop for Adapter<P> {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken exactly once, here, and never used after.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        drop_quietly(inner);
    }
}

impl<P: Plugin> Adapter<P> {
    fn new(plugin: P, pusher: Pusher) -> Self {
        let hooks = plugin.hooks();
        let specs = hooks
            .iter()
            .map(|h| HookSpec {
                pattern: h.pattern.as_str().into(),
                blocking: h.blocking,
                usage: h.usage.as_str().into(),
                description: h.description.as_str().into(),
            })
            .collect();
        Adapter {
            inner: ManuallyDrop::new(Inner {
                plugin,
                hooks,
                pusher,
            }),
            specs,
        }
    }
}

impl<P: Plugin> PluginObject for Adapter<P> {
    fn hooks(&self) -> RVec<HookSpec> {
        self.specs.clone()
    }

    fn connect(&self, client: &ClientFfi<'_>) -> StatePtr {
        // A panic here leaves the connection with the default state: the
        // plugin's hooks still get a state to work with.
        let state = catch(|| self.inner.plugin.connected(&Client::new(client)))
            .unwrap_or_else(|_| P::State::default());
        StatePtr(Box::into_raw(Box::new(state)).cast())
    }

    fn disconnect(&self, client: &ClientFfi<'_>, state: StatePtr) {
        // SAFETY: `state` was made by `connect` of this plugin, as a
        // `Box<P::State>`, and the host gives it back exactly once.
        let state = unsafe { Box::from_raw(state.0.cast::<P::State>()) };
        if catch(|| self.inner.plugin.disconnected(&Client::new(client), *state)).is_err() {
            // The panic is the plugin's to report; the connection is gone.
        }
    }

    fn call(
        &self,
        hook: usize,
        request: &RequestFfi<'_>,
        state: &mut StatePtr,
        out: &mut RString,
    ) -> RResult<Outcome, HookFailure> {
        let Some(h) = self.inner.hooks.get(hook) else {
            return RErr(HookFailure::Error(format!("no hook number {hook}").into()));
        };
        // SAFETY: as in `disconnect`; the host hands the state to one call
        // at a time, so this is the only reference to it.
        let state = unsafe { &mut *state.0.cast::<P::State>() };
        let start = out.len();
        // The error is turned into text inside the guard: its `Display`
        // and `Drop` are plugin code too.
        let result = catch(|| {
            let mut reply = Reply::new(out, state, &self.inner.pusher, request.client.id);
            let req = Request::new(request);
            match (h.handler)(&self.inner.plugin, &req, &mut reply) {
                Ok(()) => Ok(reply.finish()),
                Err(e) => Err(e.to_string()),
            }
        });
        // A failed handler's partial reply is dropped: the client gets the
        // error line alone.
        match result {
            Ok(Ok(finished)) if finished.decline => {
                out.drain(start..);
                ROk(Outcome {
                    decline: true,
                    ..Outcome::default()
                })
            }
            Ok(Ok(finished)) => ROk(Outcome {
                close: finished.close,
                decline: false,
                later: match finished.later {
                    Some(shared) => RSome(PendingReply_TO::from_value(Pending(shared), TD_Opaque)),
                    None => RNone,
                },
            }),
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
