//! Turning a panic inside plugin code into a message for the host.
//!
//! A panic must never unwind into the host: unwinding across `extern "C"`
//! aborts the whole process. Every entry point runs plugin code under
//! [`catch`], which returns the panic's message and location instead.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// Set while plugin code runs under [`catch`] on this thread.
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs, in this library's copy of `std`, a panic hook that stays quiet
/// for panics that [`catch`] reports to the host (the host logs them), and
/// defers to the previous hook for any other panic.
fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if CATCHING.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                LOCATION.with(|l| *l.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, returning the panic message (with its location) if it panics.
///
/// Nothing here may unwind: the message is made, and the payload dropped,
/// under `catch_unwind` too, because a payload's own `Drop` or `Display`
/// can panic again.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    LOCATION.with(|l| l.borrow_mut().take());
    let was = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    let result = result.map_err(|payload| {
        let message =
            std::panic::catch_unwind(AssertUnwindSafe(|| payload_message(payload.as_ref())))
                .unwrap_or_else(|_| "panic whose message could not be read".to_owned());
        if let Err(again) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            // A payload that panics while being dropped: give up on it.
            std::mem::forget(again);
        }
        match LOCATION.with(|l| l.borrow_mut().take()) {
            Some(at) => format!("{message} (at {at})"),
            None => message,
        }
    });
    CATCHING.with(|c| c.set(was));
    result
}

/// Drops `value` without letting a panic in its `Drop` escape.
pub(crate) fn drop_quietly<T>(value: T) {
    if let Err(payload) = catch(move || drop(value)) {
        // Nobody to report to from a destructor; the host carries on.
        let _ = payload;
    }
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}
