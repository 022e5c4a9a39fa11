//! The host's side of [`plugin_api::abi::HostObject`]: what plugins may ask
//! of the host at any time, from any thread.

use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RArc, RSlice, RStr};
use plugin_api::abi::{HostBox, HostObject, HostObject_TO, PushStatus};

use crate::inbox::{Queued, Registry};

/// The host object handed to every plugin at start.
#[derive(Clone)]
pub struct HostServices {
    registry: Arc<Registry>,
}

impl HostServices {
    pub fn new(registry: Arc<Registry>) -> HostServices {
        HostServices { registry }
    }

    /// For plugins started where nothing connects (`--check`, benchmarks,
    /// fuzzing): every push finds no connection.
    pub fn detached() -> HostServices {
        HostServices::new(Registry::new(0))
    }

    /// The object as it crosses to a plugin.
    pub fn to_box(&self) -> HostBox {
        HostObject_TO::from_ptr(RArc::new(self.clone()), TD_Opaque)
    }
}

impl HostObject for HostServices {
    fn push(&self, connection: u64, line: RStr<'_>) -> PushStatus {
        match self.registry.push(connection, line.as_str()) {
            None => PushStatus::Gone,
            Some(Queued::Yes) => PushStatus::Queued,
            Some(Queued::Overflow) => PushStatus::Overflow,
        }
    }

    fn push_many(&self, connections: RSlice<'_, u64>, line: RStr<'_>) -> u64 {
        self.registry
            .push_many(connections.as_slice(), line.as_str())
    }

    fn wake(&self, connection: u64) {
        if let Some(inbox) = self.registry.get(connection) {
            inbox.wake();
        }
    }
}
