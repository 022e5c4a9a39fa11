//! A hook call on a blocking thread, within its plugin's limits.
//!
//! The connection waits for the call without holding its thread, so the
//! call holds up only its own connection. The wait is bounded by the
//! plugin's time limit: past it the client is told the plugin timed out
//! and the connection goes on, while the thread, which cannot be stopped
//! from outside, is left to finish on its own, its reply dropped. Such
//! abandoned threads are counted and bounded per plugin, like each
//! plugin's calls: a plugin whose calls hang makes only itself unavailable.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use abi_stable::std_types::RString;
use plugin_api::abi::{Outcome, StatePtr};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::Sleep;
use tracing::{error, warn};

use crate::call_slots;
use crate::dispatch::{CallError, Dispatcher};
use crate::reply::Reply;
use crate::session::{Action, ClientInfo, Session};
use crate::stats::HookStats;

/// What a call's thread hands back: the reply lines, the result, and how
/// long the call took.
type Ran = (
    RString,
    std::thread::Result<Result<Outcome, CallError>>,
    Duration,
);

/// A call running on a blocking thread, which its connection waits for.
///
/// The connection keeps it, and polls it from its wait, rather than
/// awaiting it inside its task: waiting connections can then move to
/// another serving thread ([`crate::handover`]) with their call in flight.
pub struct InFlight {
    dispatcher: Arc<Dispatcher>,
    route: usize,
    line: Arc<str>,
    client: ClientInfo,
    handback: Arc<Handback>,
    /// Until the call has been answered for.
    handle: Option<JoinHandle<Ran>>,
    deadline: Pin<Box<Sleep>>,
}

/// Starts `route` of `dispatcher` on `line` on a blocking thread; or, if
/// its plugin has too many calls running or hung, answers at once.
pub fn start(
    session: &mut Session,
    dispatcher: Arc<Dispatcher>,
    route: usize,
    line: Arc<str>,
    max_abandoned: usize,
) -> Result<Box<InFlight>, Action> {
    let plugin_index = dispatcher.route(route).plugin;
    let plugin = &dispatcher.plugins()[plugin_index];
    if plugin.abandoned.load(Ordering::Acquire) >= max_abandoned {
        return Err(session.reply(Reply::PluginUnavailable {
            plugin: &plugin.name,
        }));
    }
    let Some(permit) = plugin.calls.try_take() else {
        return Err(session.reply(Reply::PluginBusy {
            plugin: &plugin.name,
        }));
    };
    let limit = plugin.limits.timeout;
    let client = session.client.clone();
    let state = session.states.lend(plugin_index, &session.client.ffi());
    let handback = Arc::new(Handback::default());
    let on_thread = Arc::clone(&dispatcher);
    let thread_handback = Arc::clone(&handback);
    let thread_line = Arc::clone(&line);
    let handle = tokio::task::spawn_blocking(move || {
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
            on_thread.call(
                route,
                &thread_line,
                &mut spans,
                &client,
                &mut state,
                &mut out,
            )
        }));
        thread_handback.give(state, &on_thread, plugin_index, &client);
        (out, result, started.elapsed())
    });
    Ok(Box::new(InFlight {
        dispatcher,
        route,
        line,
        client: session.client.clone(),
        handback,
        handle: Some(handle),
        deadline: Box::pin(tokio::time::sleep(limit)),
    }))
}

impl InFlight {
    /// Ready once the call has ended or run past its plugin's time limit,
    /// with its reply, or the host's in its place, written to `session`.
    pub fn poll_finish(&mut self, cx: &mut Context<'_>, session: &mut Session) -> Poll<Action> {
        let Some(handle) = &mut self.handle else {
            return Poll::Ready(Action::Continue);
        };
        if let Poll::Ready(ran) = Pin::new(handle).poll(cx) {
            self.handle = None;
            return Poll::Ready(self.finished(session, ran));
        }
        ready!(self.deadline.as_mut().poll(cx));
        Poll::Ready(self.timed_out(session))
    }

    /// Takes the call's timer to the calling thread's runtime: the
    /// connection moved there.
    pub fn move_here(&mut self) {
        self.deadline = Box::pin(tokio::time::sleep_until(self.deadline.deadline()));
    }

    fn finished(&mut self, session: &mut Session, ran: Result<Ran, JoinError>) -> Action {
        let (dispatcher, route) = (&self.dispatcher, self.route);
        // Back whatever the call's outcome, a failure of the host's own
        // code around it included.
        if let Some(state) = self.handback.take() {
            session
                .states
                .give_back(dispatcher.route(route).plugin, state);
        }
        let Ok((out, Ok(result), took)) = ran else {
            error!(
                connection = session.client.id,
                "internal error around a hook call"
            );
            return session.reply(Reply::InternalError);
        };
        dispatcher.route(route).placement.ran_blocking(took);
        dispatcher.stats(route).latency.record(took);
        let start = session.out.len();
        session.out.push_str(&out);
        session.after_blocking(route, &self.line, start, result)
    }

    fn timed_out(&mut self, session: &mut Session) -> Action {
        let (dispatcher, route) = (&self.dispatcher, self.route);
        let plugin_index = dispatcher.route(route).plugin;
        let plugin = &dispatcher.plugins()[plugin_index];
        // A hook that ran this long is never trusted with a serving
        // thread, whatever it did before.
        dispatcher.route(route).placement.demote();
        HookStats::bump(&dispatcher.stats(route).timeouts);
        // The call may have ended as the limit passed: its state is back.
        if let Some(state) = self.handback.take_or_abandon() {
            session.states.give_back(plugin_index, state);
        }
        let (name, hook) = dispatcher.names(route);
        let abandoned = Arc::clone(&plugin.abandoned);
        let now = abandoned.fetch_add(1, Ordering::AcqRel) + 1;
        warn!(
            connection = session.client.id,
            plugin = %name,
            hook = %hook,
            limit_secs = plugin.limits.timeout.as_secs(),
            abandoned = now,
            "hook call timed out; its thread is left to finish"
        );
        // The thread counts as abandoned until it ends.
        if let Some(handle) = self.handle.take() {
            tokio::spawn(async move {
                let _ = handle.await;
                abandoned.fetch_sub(1, Ordering::AcqRel);
            });
        }
        session.reply(Reply::PluginTimedOut { plugin: name })
    }
}

impl Drop for InFlight {
    /// A connection that ends with a call in flight leaves its state in
    /// the plugin to the plugin's `disconnect`, now or when the call ends.
    fn drop(&mut self) {
        if self.handle.is_some()
            && let Some(state) = self.handback.take_or_abandon()
        {
            let plugin = self.dispatcher.route(self.route).plugin;
            (self.dispatcher.plugins()[plugin].object).disconnect(&self.client.ffi(), state);
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

    /// The state, if the call has ended; else the connection stops
    /// waiting for it, and the state goes to the plugin when it ends.
    fn take_or_abandon(&self) -> Option<StatePtr> {
        let mut slot = self.slot();
        match std::mem::replace(&mut *slot, Slot::Abandoned) {
            Slot::Returned(state) => {
                *slot = Slot::Waiting;
                Some(state)
            }
            _ => None,
        }
    }
}
