//! Which thread took the signal that is about to end the serving process.
//!
//! When the serving process dies, several hooks may have been running, on
//! several threads; only the one whose thread took the fatal signal is to
//! blame. A handler for those signals records the thread's call slot in the
//! memory shared with the supervisor, puts back the handler that was there
//! before (Rust's own, which reports a stack overflow, or the default),
//! and returns: the fault happens again, or `abort` raises its signal
//! again, and the process dies as it would have.

use std::sync::OnceLock;

use crate::call_slots;

/// The signals that end a process for a fault in its code.
const FATAL: [libc::c_int; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGSYS,
];

/// The handlers installed before ours, to put back.
static PREVIOUS: OnceLock<[libc::sigaction; FATAL.len()]> = OnceLock::new();

/// Installs the handler. Call once, before other threads start.
pub fn install() -> std::io::Result<()> {
    // SAFETY: sigaction structs are plain data, zeroed is a valid value;
    // each call reads and writes only the structs passed.
    unsafe {
        let mut previous: [libc::sigaction; FATAL.len()] = std::mem::zeroed();
        for (signal, old) in FATAL.iter().zip(previous.iter_mut()) {
            if libc::sigaction(*signal, std::ptr::null(), old) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if PREVIOUS.set(previous).is_err() {
            return Ok(());
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fatal_signal as *const () as libc::sighandler_t;
        // On the alternate stack Rust gives each thread: a stack overflow
        // leaves no room on the thread's own.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        for signal in FATAL {
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

extern "C" fn on_fatal_signal(
    signal: libc::c_int,
    _info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    call_slots::mark_crashed_here();
    if let (Some(previous), Some(index)) = (PREVIOUS.get(), FATAL.iter().position(|&s| s == signal))
    {
        // SAFETY: sigaction is async-signal-safe; it reads the saved
        // action, which was written before this handler was installed.
        unsafe {
            libc::sigaction(signal, &previous[index], std::ptr::null_mut());
        }
    }
}
