//! The editor thread: rustyline's prompt, and what it reports to the main
//! thread.

use std::sync::mpsc::{Receiver, Sender};

use anyhow::Context;
use rustyline::Editor;
use rustyline::config::{CompletionType, Config, Configurer};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;

use super::Event;
use super::gate::GatedPrompt;
use crate::completion::CommandHelper;
use crate::help_words::Learned;
use crate::history::History;

type LineEditor = Editor<CommandHelper, DefaultHistory>;

/// What the user did at the prompt.
pub(super) enum Input {
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D on an empty line.
    Eof,
    Failed(ReadlineError),
}

pub(super) fn new_editor(learned: Learned) -> anyhow::Result<LineEditor> {
    let mut config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .max_history_size(1000)
        .context("history size")?;
    // A synchronized update brackets each redraw; the editor thread can be
    // halted inside a redraw (see `Gate`) and would leave the terminal
    // holding back its output.
    config.enable_synchronized_output(false);
    let config = config.build();
    let mut editor = LineEditor::with_config(config).context("starting the line editor")?;
    editor.set_helper(Some(CommandHelper { learned }));
    Ok(editor)
}

/// The editor thread: reads lines until the user leaves, records each in
/// the history before anything is done with it, and waits after each one
/// for the main thread to say whether to read on.
pub(super) fn edit(
    mut editor: LineEditor,
    prompt: &GatedPrompt,
    mut history: Option<History>,
    events: &Sender<Event>,
    resume: &Receiver<()>,
) {
    loop {
        let input = match editor.readline(prompt) {
            Ok(line) => {
                if let Some(history) = history.as_mut() {
                    history.record(&mut editor, &line);
                }
                Input::Line(line)
            }
            Err(ReadlineError::Interrupted) => Input::Interrupted,
            Err(ReadlineError::Eof) => Input::Eof,
            Err(e) => Input::Failed(e),
        };
        let read_on = matches!(input, Input::Line(_));
        // Waiting for the go-ahead keeps the prompt off the screen while
        // the main thread may still decide that the session is over.
        if events.send(Event::Input(input)).is_err() || !read_on || resume.recv().is_err() {
            return;
        }
    }
}
