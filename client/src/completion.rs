//! Tab completion of the command words named in the request hook table.

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::hooks;

/// Completes the first word of the line; arguments (a nick, a room) are
/// the user's own, so later words are left alone.
pub struct CommandHelper;

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
        Ok((start, candidates(prefix)))
    }
}

fn candidates(prefix: &str) -> Vec<Pair> {
    hooks::command_words()
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
        candidates(prefix).into_iter().map(|p| p.display).collect()
    }

    #[test]
    fn completes_case_insensitively() {
        assert_eq!(words("he"), ["HELLO"]);
        assert_eq!(words("T"), ["TIME"]);
        assert_eq!(
            words(""),
            [
                "HELLO", "TIME", "CLOSE", "NICK", "JOIN", "SAY", "LEAVE", "WHO"
            ]
        );
        assert_eq!(words("s"), ["SAY"]);
        assert!(words("X").is_empty());
    }
}
