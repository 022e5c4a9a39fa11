//! A hook call on a blocking thread, within its plugin's limits.
//!
//! The connection waits for the call without holding its thread, so the
//! call holds up only its own connection. The wait is bounded by the
//! plugin's time limit: past it the client is told the plugin timed out
//! and the connection goes on, while the thread, which cannot be stopped
//! from outside, is left to finish on its own, its reply dropped. Such
//! abandoned threads are counted and bounded per plugin, like each
//! plugin's calls: a plugin whose calls hang makes only itself unavailable.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use abi_stable::std_types::RString;
use bytes::BytesMut;
use plugin_api::abi::StatePtr;
use tracing::{error, warn};

use crate::call_slots;
use crate::dispatch::{CallError, Dispatcher};
use crate::reply::Reply;
use crate::session::{Action, ClientInfo, Session};
use crate::stats::HookStats;

/// Runs `route` of `dispatcher` on `line` on a blocking thread and writes
/// its reply, or the host's reply in its place, to `session`.
pub async fn call(
    session: &mut Session,
    dispatcher: Arc<Dispatcher>,
    route: usize,
    line: BytesMut,
    max_abandoned: usize,
) -> Action {
    let plugin_index = dispatcher.route(route).plugin;
    let plugin = &dispatcher.plugins()[plugin_index];
    if plugin.abandoned.load(Ordering::Acquire) >= max_abandoned {
        return session.reply(Reply::PluginUnavailable {
            plugin: &plugin.name,
        });
    }
    let Some(permit) = plugin.calls.try_take() else {
        return session.reply(Reply::PluginBusy {
            plugin: &plugin.name,
        });
    };
    let limit = plugin.limits.timeout;
    let client = session.client.clone();
    let state = session.states.lend(plugin_index, &session.client.ffi());
    let handback = Arc::new(Handback::default());
    let on_thread = Arc::clone(&dispatcher);
    let thread_handback = Arc::clone(&handback);
    let thread_line = line.clone();
    let mut handle = tokio::task::spawn_blocking(move || {
        // Held until the call is over, timed out or not: a plugin's
        // abandoned calls still count against its bound.
        let _permit = permit;
        let mut state = state;
        let mut out = RString::new();
        let mut spans = Vec::new();
        let started = Instant::now();
        let _mark = call_slots::enter(route, Some(started));
        // Plugin panics are caught in the plugin; this guards the host's
        // own code around the call.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match std::str::from_utf8(&thread_line) {
                Ok(text) => {
                    on_thread.call(route, text, &mut spans, client.ffi(), &mut state, &mut out)
                }
                Err(_) => Err(CallError::Failed("invalid UTF-8".into())),
            }
        }));
        thread_handback.give(state, &on_thread, plugin_index, &client);
        (out, result, started.elapsed())
    });
    match tokio::time::timeout(limit, &mut handle).await {
        Ok(Ok((out, Ok(result), took))) => {
            dispatcher.route(route).placement.ran_blocking(took);
            dispatcher.stats(route).latency.record(took);
            if let Some(state) = handback.take() {
                session.states.give_back(plugin_index, state);
            }
            let start = session.out.len();
            session.out.push_str(&out);
            session.after_blocking(route, line, start, result)
        }
        Ok(Ok((_, Err(_), _))) | Ok(Err(_)) => {
            error!(
                connection = session.client.id,
                "internal error around a hook call"
            );
            session.reply(Reply::InternalError)
        }
        Err(_) => {
            // A hook that ran this long is never trusted with a serving
            // thread, whatever it did before.
            dispatcher.route(route).placement.demote();
            HookStats::bump(&dispatcher.stats(route).timeouts);
            match handback.take() {
                // The call ended as the limit passed: its state is back.
                Some(state) => session.states.give_back(plugin_index, state),
                None => handback.abandon(),
            }
            let (name, hook) = dispatcher.names(route);
            let abandoned = Arc::clone(&plugin.abandoned);
            let now = abandoned.fetch_add(1, Ordering::AcqRel) + 1;
            warn!(
                connection = session.client.id,
                plugin = %name,
                hook = %hook,
                limit_secs = limit.as_secs(),
                abandoned = now,
                "hook call timed out; its thread is left to finish"
            );
            tokio::spawn(async move {
                let _ = handle.await;
                abandoned.fetch_sub(1, Ordering::AcqRel);
            });
            session.reply(Reply::PluginTimedOut { plugin: name })
        }
    }
}

/// Where a call on a blocking thread leaves the connection's state in
/// its plugin: back for the connection, or, if the connection gave up
/// waiting, to the plugin's `disconnect` (the connection's state in that
/// plugin starts afresh on its next call).
#[derive(Default)]
struct Handback(Mutex<Slot>);

#[derive(Default)]
enum Slot {
    #[default]
    Waiting,
    Returned(StatePtr),
    Abandoned,
}

impl Handback {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        // Every value of the slot is whole: a poisoned lock changes nothing.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The call's thread leaves the state here when the call ends.
    fn give(&self, state: StatePtr, table: &Dispatcher, plugin: usize, client: &ClientInfo) {
        let mut slot = self.slot();
        if matches!(*slot, Slot::Abandoned) {
            drop(slot);
            table.plugins()[plugin]
                .object
                .disconnect(&client.ffi(), state);
        } else {
            *slot = Slot::Returned(state);
        }
    }

    /// The state, if the call has ended.
    fn take(&self) -> Option<StatePtr> {
        let mut slot = self.slot();
        match std::mem::take(&mut *slot) {
            Slot::Returned(state) => Some(state),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// The connection stops waiting: the state goes to the plugin.
    fn abandon(&self) {
        *self.slot() = Slot::Abandoned;
    }
}
