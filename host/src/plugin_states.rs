//! One connection's state in each plugin ([`plugin_api::Plugin::State`]):
//! made by the plugin when the connection opens, lent to one call at a
//! time, and given back to the plugin when the connection ends.

use std::sync::Arc;

use plugin_api::abi::{ClientFfi, StatePtr};

use crate::dispatch::Dispatcher;
use crate::session::ClientInfo;

/// A connection's states, one per plugin of the table they were made for.
pub struct PluginStates {
    /// The table whose plugins made the states; kept so that every state
    /// goes back to the plugin instance that made it, even after a reload
    /// replaced the table.
    table: Arc<Dispatcher>,
    /// `None` while lent to a call on a blocking thread, or lost with a
    /// call that timed out (that call's thread gives it back).
    states: Vec<Option<StatePtr>>,
}

impl PluginStates {
    /// Tells every plugin of `table` that the connection opened.
    pub fn connect(table: Arc<Dispatcher>, client: &ClientFfi<'_>) -> PluginStates {
        let states = table
            .plugins()
            .iter()
            .map(|p| Some(p.object.connect(client)))
            .collect();
        PluginStates { table, states }
    }

    /// The table the states belong to.
    pub fn table(&self) -> &Arc<Dispatcher> {
        &self.table
    }

    /// Moves to `table`, a newer table: plugins that are in both keep their
    /// states, the others are told that the connection ended (the old) or
    /// opened (the new).
    pub fn follow(&mut self, table: Arc<Dispatcher>, client: &ClientFfi<'_>) {
        let mut old = std::mem::take(&mut self.states);
        let states = table
            .plugins()
            .iter()
            .map(|new| {
                let kept = self
                    .table
                    .plugins()
                    .iter()
                    .position(|p| Arc::ptr_eq(p, new))
                    .and_then(|i| old[i].take());
                Some(kept.unwrap_or_else(|| new.object.connect(client)))
            })
            .collect();
        for (plugin, state) in self.table.plugins().iter().zip(old) {
            if let Some(state) = state {
                plugin.object.disconnect(client, state);
            }
        }
        self.table = table;
        self.states = states;
    }

    /// The table, and the state of plugin `plugin` for a call on this thread.
    pub fn split(&mut self, plugin: usize, client: &ClientInfo) -> (&Dispatcher, &mut StatePtr) {
        let table = &self.table;
        let state = self.states[plugin]
            .get_or_insert_with(|| table.plugins()[plugin].object.connect(&client.ffi()));
        (table, state)
    }

    /// Lends the state of plugin `plugin` to a call on another thread.
    pub fn lend(&mut self, plugin: usize, client: &ClientFfi<'_>) -> StatePtr {
        match self.states[plugin].take() {
            Some(state) => state,
            // Lost with a call that timed out: the plugin starts afresh.
            None => self.table.plugins()[plugin].object.connect(client),
        }
    }

    /// Takes back a state lent with [`PluginStates::lend`].
    pub fn give_back(&mut self, plugin: usize, state: StatePtr) {
        self.states[plugin] = Some(state);
    }

    /// Tells every plugin that the connection ended.
    pub fn disconnect(&mut self, client: &ClientFfi<'_>) {
        let states = std::mem::take(&mut self.states);
        for (plugin, state) in self.table.plugins().iter().zip(states) {
            if let Some(state) = state {
                plugin.object.disconnect(client, state);
            }
        }
    }
}
