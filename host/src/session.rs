//! The protocol logic of one connection, free of I/O: frames in, reply
//! lines out. The connection task feeds it from the socket; the fuzz target
//! and the benchmarks feed it directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use abi_stable::std_types::RString;
use bytes::BytesMut;
use plugin_api::abi::{Outcome, Span};
use tracing::{debug, warn};

use crate::call_slots;
use crate::dispatch::{CallError, Dispatcher, Target};
use crate::framing::{Frame, LineDecoder};
use crate::reply::Reply;

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
    /// Run route `route` of `dispatcher` on `line` on a blocking thread
    /// (`blocking_call::call`).
    Blocking {
        dispatcher: Arc<Dispatcher>,
        route: usize,
        line: BytesMut,
    },
}

/// One connection's protocol state and reply buffer.
pub struct Session {
    pub decoder: LineDecoder,
    /// Replies waiting to be written; plugins append to it directly, so a
    /// reply is never copied on its way to the socket.
    pub out: RString,
    /// Capture-group scratch space, reused from request to request.
    pub spans: Vec<Span>,
    pub peer: Arc<str>,
    /// The subject of the client's TLS certificate (RFC 4514, control
    /// characters escaped), on a TLS connection that presented one.
    pub tls_subject: Option<Arc<str>>,
    pub id: u64,
}

impl Session {
    pub fn new(max_line_length: usize, peer: Arc<str>, id: u64) -> Session {
        Session {
            decoder: LineDecoder::new(max_line_length),
            out: RString::new(),
            spans: Vec::new(),
            peer,
            tls_subject: None,
            id,
        }
    }

    /// Answers one frame, appending the reply to `out`, unless the hook
    /// must run where blocking is allowed.
    pub fn respond(&mut self, frame: Frame, dispatch: &arc_swap::ArcSwap<Dispatcher>) -> Action {
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                let max = self.decoder.max_length();
                return self.reply(Reply::LineTooLong { max });
            }
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            return self.reply(Reply::InvalidUtf8);
        };
        debug!(connection = self.id, request = text, "request");
        if text == "CLOSE" {
            Reply::CloseConfirm.write_to(&mut self.out);
            return Action::Close;
        }
        let dispatcher = dispatch.load();
        let route = match dispatcher.target(text) {
            Target::Hook(route) => route,
            Target::NotFound => return self.reply(Reply::NotFound),
            Target::ControlCharacters => return self.reply(Reply::ControlCharacters),
        };
        let target = dispatcher.route(route);
        if let Some(reason) = &target.disabled {
            let plugin = &dispatcher.plugins()[target.plugin].name;
            return self.reply(Reply::PluginDisabled { plugin, reason });
        }
        if !target.placement.inline() {
            return Action::Blocking {
                dispatcher: arc_swap::Guard::into_inner(dispatcher),
                route,
                line,
            };
        }
        self.call_inline(&dispatcher, route, text)
    }

    /// Runs a hook that has earned its place on this thread. No clock is
    /// read: the watchdog sees a call that stalls the thread and sends the
    /// hook to blocking threads.
    fn call_inline(&mut self, dispatcher: &Dispatcher, route: usize, text: &str) -> Action {
        let _mark = call_slots::enter(route, None);
        self.call(dispatcher, route, text)
    }

    fn call(&mut self, dispatcher: &Dispatcher, route: usize, text: &str) -> Action {
        let result = dispatcher.call(
            route,
            text,
            &mut self.spans,
            &self.peer,
            self.id,
            &mut self.out,
        );
        self.finish_call(result)
    }

    /// Turns a hook's result into the connection's next step, writing the
    /// error line if it failed.
    pub fn finish_call(&mut self, result: Result<Outcome, CallError>) -> Action {
        match result {
            Ok(outcome) if outcome.close => Action::Close,
            Ok(_) => Action::Continue,
            Err(CallError::Failed(message)) => self.reply(Reply::HookError { message: &message }),
            Err(CallError::Panicked { plugin, message }) => {
                match PANIC_LOG.admit() {
                    Some(0) => warn!(connection = self.id, plugin, "hook panicked: {message}"),
                    Some(more) => warn!(
                        connection = self.id,
                        plugin,
                        "hook panicked: {message} ({more} more panics not logged in the last second)"
                    ),
                    None => debug!(connection = self.id, plugin, "hook panicked: {message}"),
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
