//! The protocol logic of one connection, free of I/O: frames in, reply
//! lines out. The connection task feeds it from the socket; the fuzz target
//! and the benchmarks feed it directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use abi_stable::std_types::{RNone, ROk, RSome, RStr, RString};
use plugin_api::abi::{ClientFfi, Outcome, PendingBox, Span};
use tracing::{debug, warn};

use crate::call_slots;
use crate::dispatch::{CallError, Dispatcher, Target};
use crate::framing::{Frame, LineDecoder};
use crate::outgoing::frame_reply;
use crate::plugin_states::PluginStates;
use crate::reply::Reply;
use crate::stats;
use crate::table_in_force::TableInForce;

/// Panics are logged at most once a second: a client that keeps
/// triggering one must not be able to flood the log.
static PANIC_LOG: RateLimit = RateLimit::new();

/// Admits one event per second, counting the ones it turns away.
struct RateLimit {
    /// Milliseconds since `start` of the last admitted event, plus one.
    last: AtomicU64,
    suppressed: AtomicU64,
    start: OnceLock<Instant>,
}

impl RateLimit {
    const fn new() -> Self {
        RateLimit {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            start: OnceLock::new(),
        }
    }

    /// `Some(n)` if this event may be logged, `n` being how many were
    /// turned away since the last one; `None` if it may not.
    fn admit(&self) -> Option<u64> {
        let now = self.start.get_or_init(Instant::now).elapsed().as_millis() as u64;
        self.admit_at(now)
    }

    /// [`RateLimit::admit`] at `now` milliseconds after the first event.
    fn admit_at(&self, now: u64) -> Option<u64> {
        let now = now + 1; // 0 stands for "never admitted"
        let last = self.last.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 1000)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// What the connection must do after a request.
pub enum Action {
    Continue,
    /// Send what is waiting, then close.
    Close,
    /// Answer `INFO`, from what the connection shares with the others
    /// (`crate::info`).
    Info,
    /// Answer `HELP`, or `HELP <topic>` (`crate::help`).
    Help {
        topic: Option<String>,
    },
    /// Run route `route` of `dispatcher` on `line` on a blocking thread
    /// (`blocking_call::call`). A copy of the line: the connection's input
    /// buffer, where the line was, moves on while the call runs.
    Blocking {
        dispatcher: Arc<Dispatcher>,
        route: usize,
        line: Arc<str>,
    },
    /// The hook answers later: wait for `reply` before answering anything
    /// else on this connection.
    Pending(PendingCall),
}

/// A reply a hook promised, and what the connection needs to wait for it.
pub struct PendingCall {
    pub dispatcher: Arc<Dispatcher>,
    pub route: usize,
    pub reply: PendingBox,
    /// Where the reply starts in the output buffer, once it came.
    pub start: usize,
}

/// Where a request goes after a hook's call.
enum Next {
    Done(Action),
    /// The hook declined the line: dispatch goes on from here.
    Declined(Target),
}

/// The connection as plugins see it.
#[derive(Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub peer: Arc<str>,
    /// The subject of the client's TLS certificate, if it presented one.
    pub tls_subject: Option<Arc<str>>,
}

impl ClientInfo {
    pub fn ffi(&self) -> ClientFfi<'_> {
        ClientFfi {
            id: self.id,
            peer: RStr::from_str(&self.peer),
            tls_subject: RStr::from_str(self.tls_subject.as_deref().unwrap_or("")),
        }
    }
}

/// One connection's protocol state and reply buffer.
pub struct Session {
    pub decoder: LineDecoder,
    /// Replies waiting to be written; plugins append to it directly, so a
    /// reply is never copied on its way to the socket.
    pub out: RString,
    /// Capture-group scratch space, reused from request to request.
    pub spans: Vec<Span>,
    pub client: ClientInfo,
    /// The connection's state in each plugin of the table it uses.
    pub states: PluginStates,
    /// The version of that table, as [`TableInForce`] counts them.
    version: u64,
}

impl Session {
    /// Opens a session, telling every plugin of the current table.
    pub fn new(max_line_length: usize, client: ClientInfo, tables: &TableInForce) -> Session {
        let (table, version) = tables.load_versioned();
        let states = PluginStates::connect(table, &client.ffi());
        Session {
            decoder: LineDecoder::new(max_line_length),
            out: RString::new(),
            spans: Vec::new(),
            client,
            states,
            version,
        }
    }

    /// Answers one frame, appending the reply to `out`, unless the hook
    /// must run where blocking is allowed or answers later.
    pub fn respond(&mut self, frame: Frame<'_>, tables: &TableInForce) -> Action {
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                let max = self.decoder.max_length();
                return self.reply(Reply::LineTooLong { max });
            }
        };
        // Checked once here, whichever hooks the line then goes through.
        let Ok(text) = std::str::from_utf8(line) else {
            return self.reply(Reply::InvalidUtf8);
        };
        // An `AUTH` line holds the admin secret, or a near miss of it.
        let logged = if text.starts_with("AUTH ") {
            "AUTH ..."
        } else {
            text
        };
        debug!(connection = self.client.id, request = logged, "request");
        if text == "CLOSE" {
            Reply::CloseConfirm.write_to(&mut self.out);
            return Action::Close;
        }
        if text == "INFO" {
            return Action::Info;
        }
        if let Some(topic) = text.strip_prefix("HELP") {
            // `HELP`, or `HELP <command>`; `HELPER` is another command.
            match topic.strip_prefix(' ') {
                None if topic.is_empty() => return Action::Help { topic: None },
                Some(topic) => {
                    return Action::Help {
                        topic: Some(topic.trim().to_owned()),
                    };
                }
                None => {}
            }
        }
        if tables.version() != self.version {
            // A reload stored a new table: this line is the first to use it.
            let (current, version) = tables.load_versioned();
            if !Arc::ptr_eq(&current, self.states.table()) {
                self.states.follow(current, &self.client.ffi());
            }
            self.version = version;
        }
        let target = self.states.table().target(text);
        self.dispatch(target, text)
    }

    /// Runs `line` through the table from `target` on, until a hook
    /// answers it or must run elsewhere.
    pub fn dispatch(&mut self, mut target: Target, text: &str) -> Action {
        loop {
            let route = match target {
                Target::Hook(route) => route,
                Target::NotFound => return self.reply(Reply::NotFound),
                Target::ControlCharacters => return self.reply(Reply::ControlCharacters),
            };
            // The table is borrowed, never cloned, on this path: its
            // reference count is shared by every connection on every thread.
            let table = self.states.table();
            let hook = table.route(route);
            let plugin = hook.plugin;
            if let Some(reason) = &hook.disabled {
                let plugin = &table.plugins()[plugin].name;
                Reply::PluginDisabled { plugin, reason }.write_to(&mut self.out);
                return Action::Continue;
            }
            if !hook.placement.inline() {
                return Action::Blocking {
                    dispatcher: Arc::clone(table),
                    route,
                    line: Arc::from(text),
                };
            }
            let start = self.out.len();
            let result = {
                // No clock is read: the watchdog sees a call that stalls
                // the thread and sends the hook to blocking threads.
                let _mark = call_slots::enter(route, None);
                let timed = stats::sample();
                let (table, state) = self.states.split(plugin, &self.client);
                let result = table.call_raw(
                    route,
                    text,
                    &mut self.spans,
                    &self.client,
                    state,
                    &mut self.out,
                );
                if let Some(started) = timed {
                    table.stats(route).latency.record(started.elapsed());
                }
                result
            };
            // The usual outcome, a reply and nothing more, read field by
            // field where the plugin left it (`Dispatcher::call_raw`); the
            // rest as `after_call` says.
            if let ROk(Outcome {
                close,
                decline: false,
                later: RNone,
            }) = &result
            {
                frame_reply(&mut self.out, start);
                return if *close {
                    Action::Close
                } else {
                    Action::Continue
                };
            }
            let result = self.states.table().outcome(route, result);
            match self.after_call(route, text, start, result) {
                Next::Done(action) => return action,
                Next::Declined(next) => target = next,
            }
        }
    }

    /// Carries on with a request after its hook ran on a blocking thread,
    /// its reply lines appended to `out` from `start`.
    pub fn after_blocking(
        &mut self,
        route: usize,
        line: &str,
        start: usize,
        result: Result<Outcome, CallError>,
    ) -> Action {
        match self.after_call(route, line, start, result) {
            Next::Done(action) => action,
            Next::Declined(next) => self.dispatch(next, line),
        }
    }

    /// Finishes a pending reply once the plugin gave it.
    pub fn after_pending(
        &mut self,
        call: PendingCall,
        result: Result<Outcome, CallError>,
    ) -> Action {
        match self.after_call(call.route, "", call.start, result) {
            Next::Done(Action::Pending(again)) => {
                // A pending reply cannot itself be pending; answer it as sent.
                drop(again);
                frame_reply(&mut self.out, call.start);
                Action::Continue
            }
            Next::Done(action) => action,
            // Too late to pass a line on once its reply was promised.
            Next::Declined(_) => {
                frame_reply(&mut self.out, call.start);
                Action::Continue
            }
        }
    }

    /// What follows a call of route `route` of the session's table.
    fn after_call(
        &mut self,
        route: usize,
        text: &str,
        start: usize,
        result: Result<Outcome, CallError>,
    ) -> Next {
        match result {
            Ok(outcome) if outcome.decline => {
                self.out.drain(start..);
                Next::Declined(self.states.table().target_after(route, text))
            }
            Ok(Outcome {
                later: RSome(reply),
                ..
            }) => Next::Done(Action::Pending(PendingCall {
                dispatcher: Arc::clone(self.states.table()),
                route,
                reply,
                start,
            })),
            Ok(outcome) => {
                frame_reply(&mut self.out, start);
                Next::Done(if outcome.close {
                    Action::Close
                } else {
                    Action::Continue
                })
            }
            Err(error) => {
                self.out.drain(start..);
                Next::Done(self.failed(error))
            }
        }
    }

    /// Writes the error line of a failed hook.
    fn failed(&mut self, error: CallError) -> Action {
        let id = self.client.id;
        match error {
            CallError::Failed(message) => self.reply(Reply::HookError { message: &message }),
            CallError::Panicked { plugin, message } => {
                match PANIC_LOG.admit() {
                    Some(0) => warn!(connection = id, plugin, "hook panicked: {message}"),
                    Some(more) => warn!(
                        connection = id,
                        plugin,
                        "hook panicked: {message} ({more} more panics not logged in the last second)"
                    ),
                    None => debug!(connection = id, plugin, "hook panicked: {message}"),
                }
                self.reply(Reply::PluginFailed {
                    plugin: &plugin,
                    message: &message,
                })
            }
        }
    }

    /// Answers with one of the host's own lines; the connection goes on.
    pub fn reply(&mut self, reply: Reply<'_>) -> Action {
        reply.write_to(&mut self.out);
        Action::Continue
    }
}

impl Drop for Session {
    /// However the connection ended, every plugin hears of it and gets its
    /// state back.
    fn drop(&mut self) {
        self.states.disconnect(&self.client.ffi());
    }
}

#[cfg(test)]
mod tests {
    use super::RateLimit;

    #[test]
    fn the_rate_limit_admits_one_event_a_second_then_counts() {
        let limit = RateLimit::new();
        assert_eq!(limit.admit_at(0), Some(0));
        assert_eq!(limit.admit_at(10), None);
        assert_eq!(limit.admit_at(999), None);
        assert_eq!(limit.admit_at(1000), Some(2));
        assert_eq!(limit.admit_at(1500), None);
        assert_eq!(limit.admit_at(5000), Some(1));
    }
}
