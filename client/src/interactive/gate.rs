//! The gate in the prompt that stops the editor thread once the session is
//! over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use rustyline::Prompt;

use super::Event;

/// Stops the editor thread for good at its next redraw of the prompt.
///
/// rustyline reads the prompt's text every time it draws the prompt: when
/// it starts a line, after each message from the printer (which it draws
/// above the prompt and then draws the prompt again), and after edits. Once
/// the gate is closed, that read never returns: the editor thread reports
/// `Halted` and waits for the process to end. Whatever it drew before is
/// on the screen, nothing it could draw later can land under the farewell,
/// and it never takes its own copy of the terminal back, which is why the
/// main thread restores the terminal itself.
pub(super) struct Gate {
    closed: AtomicBool,
    events: Sender<Event>,
}

impl Gate {
    pub(super) fn new(events: Sender<Event>) -> Gate {
        Gate {
            closed: AtomicBool::new(false),
            events,
        }
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn pass(&self) {
        if !self.closed.load(Ordering::SeqCst) {
            return;
        }
        let _ = self.events.send(Event::Halted);
        loop {
            std::thread::park();
        }
    }
}

/// The prompt text, read through the gate.
pub(super) struct GatedPrompt {
    text: String,
    gate: Arc<Gate>,
}

impl GatedPrompt {
    pub(super) fn new(text: String, gate: Arc<Gate>) -> GatedPrompt {
        GatedPrompt { text, gate }
    }
}

impl Prompt for GatedPrompt {
    // `styled` defaults to this too, so every draw comes through here.
    fn raw(&self) -> &str {
        self.gate.pass();
        &self.text
    }
}
