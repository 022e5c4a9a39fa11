//! Tab completion of the command words named in the request hook table,
//! and of those the server's `HELP` lists (`help_words.rs`).

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::help_words::Learned;
use crate::hooks;

/// Completes the first word of the line; arguments (a nick, a room) are
/// the user's own, so later words are left alone.
pub struct CommandHelper {
    pub learned: Learned,
}

impl Completer for CommandHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let start = before.len() - before.trim_start().len();
        let prefix = &before[start..];
        if prefix.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        Ok((start, candidates(prefix, &learned)))
    }
}

fn candidates(prefix: &str, learned: &[String]) -> Vec<Pair> {
    let mut words: Vec<&str> = hooks::command_words().collect();
    for w in learned {
        if !words.contains(&w.as_str()) {
            words.push(w);
        }
    }
    words
        .into_iter()
        .filter(|w| {
            w.get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
        .map(|w| Pair {
            display: w.to_owned(),
            replacement: w.to_owned(),
        })
        .collect()
}

impl Hinter for CommandHelper {
    type Hint = String;
}

impl Highlighter for CommandHelper {}

impl Validator for CommandHelper {}

impl Helper for CommandHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(prefix: &str) -> Vec<String> {
        candidates(prefix, &[])
            .into_iter()
            .map(|p| p.display)
            .collect()
    }

    #[test]
    fn completes_what_the_server_listed_too() {
        let learned = ["HELLO".to_owned(), "GREET".to_owned()];
        let words: Vec<String> = candidates("g", &learned)
            .into_iter()
            .map(|p| p.display)
            .collect();
        assert_eq!(words, ["GREET"]);
        assert_eq!(candidates("HE", &learned).len(), 2, "HELLO once, and HELP");
    }

    #[test]
    fn completes_case_insensitively() {
        assert_eq!(words("he"), ["HELLO", "HELP"]);
        assert_eq!(words("T"), ["TIME"]);
        assert_eq!(
            words(""),
            [
                "HELLO", "TIME", "INFO", "HELP", "CLOSE", "NICK", "JOIN", "SAY", "LEAVE", "WHO"
            ]
        );
        assert_eq!(words("s"), ["SAY"]);
        assert!(words("X").is_empty());
    }
}
