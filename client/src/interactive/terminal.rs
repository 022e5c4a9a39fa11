//! The terminal's mode, saved before the line editor changes it, for the
//! main thread to put back when the session ends with the editor still
//! holding the terminal in raw mode.

use std::io::{self, Write};
use std::os::fd::AsFd;

use nix::sys::termios::{self, SetArg, Termios};

/// The terminal's settings before the line editor changed them.
pub(super) struct TerminalMode(Option<Termios>);

impl TerminalMode {
    pub(super) fn save() -> TerminalMode {
        TerminalMode(termios::tcgetattr(io::stdin().as_fd()).ok())
    }

    /// Puts back what the halted editor would have put back on leaving
    /// `readline`: the saved settings, and bracketed paste turned off.
    pub(super) fn restore(&self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, saved);
        }
        // rustyline's own sequence for leaving bracketed-paste mode.
        const BRACKETED_PASTE_OFF: &str = "\x1b[?2004l";
        let mut out = io::stdout().lock();
        let _ = out
            .write_all(BRACKETED_PASTE_OFF.as_bytes())
            .and_then(|()| out.flush());
    }
}
