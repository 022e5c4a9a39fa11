//! Hook patterns, compiled to match whole lines.
//!
//! A pattern is anchored at both ends in its parsed form, not by pasting
//! `\A(?:` and `)\z` around its text: pasted anchors break patterns that
//! end in a `(?x)` comment or an unbalanced construct in ways that produce
//! baffling errors, while the parsed form means exactly what the plugin
//! author wrote, matched against the whole line.

use regex_automata::meta;
use regex_syntax::hir::{Hir, Look};

/// A pattern that could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("{0}")]
    Syntax(#[from] Box<regex_syntax::Error>),
    #[error("{}", explain_pattern_error(.0))]
    Build(#[from] Box<meta::BuildError>),
}

fn explain_pattern_error(err: &meta::BuildError) -> String {
    if err.size_limit().is_some() {
        format!(
            "the pattern is too large: {}; use smaller repetition counts (`{{1000}}`, not \
             `{{1000000}}`) or fewer alternatives",
            explain_build_error(err)
        )
    } else {
        explain_build_error(err)
    }
}

/// What went wrong building an automaton, in words: the regex crate says
/// only "error building NFA" when patterns compile too large.
pub fn explain_build_error(err: &meta::BuildError) -> String {
    match err.size_limit() {
        Some(limit) => format!(
            "compiled, it would pass the regex engine's size limit of {}",
            bytes(limit)
        ),
        None => match std::error::Error::source(err) {
            Some(cause) => format!("{err}: {cause}"),
            None => err.to_string(),
        },
    }
}

/// `n` bytes in the largest binary unit that divides it.
fn bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// One hook's pattern: its text, its anchored form, and a regex for its
/// capture groups.
#[derive(Debug, Clone)]
pub struct HookPattern {
    /// The pattern as the plugin wrote it.
    pub source: String,
    /// The parsed pattern, anchored to the start and end of the line.
    pub anchored: Hir,
    /// Runs only when a handler needs the capture groups.
    pub captures: meta::Regex,
}

impl HookPattern {
    /// Parses `source` with the syntax of the `regex` crate and anchors it.
    pub fn compile(source: &str) -> Result<HookPattern, PatternError> {
        let anchored = anchored(source)?;
        let captures = meta::Builder::new()
            .build_from_hir(&anchored)
            .map_err(Box::new)?;
        Ok(HookPattern {
            source: source.to_owned(),
            anchored,
            captures,
        })
    }

    /// Capture groups including group 0.
    pub fn groups(&self) -> usize {
        self.captures.captures_len()
    }
}

/// `source` parsed and anchored at both ends of the line.
pub fn anchored(source: &str) -> Result<Hir, PatternError> {
    let hir = regex_syntax::Parser::new()
        .parse(source)
        .map_err(Box::new)?;
    Ok(Hir::concat(vec![
        Hir::look(Look::Start),
        hir,
        Hir::look(Look::End),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::Input;

    fn whole(pattern: &str, line: &str) -> bool {
        HookPattern::compile(pattern)
            .unwrap()
            .captures
            .is_match(Input::new(line))
    }

    #[test]
    fn patterns_match_whole_lines_only() {
        assert!(whole("HELLO", "HELLO"));
        assert!(!whole("HELLO", "HELLO THERE"));
        assert!(!whole("HELLO", "XHELLO"));
        assert!(whole("A|AB", "AB"), "alternation is anchored as a whole");
        assert!(whole("", ""));
    }

    #[test]
    fn verbose_patterns_with_comments_keep_their_meaning() {
        let p = "(?x) GREET \\  (\\w+)   # a name\n";
        assert!(whole(p, "GREET ada"));
        assert!(!whole(p, "GREET ada!"));
    }

    #[test]
    fn a_pattern_too_large_says_so_and_names_the_limit() {
        let err = HookPattern::compile("a{1000000}").unwrap_err().to_string();
        assert!(err.starts_with("the pattern is too large"), "{err}");
        assert!(err.contains("size limit of 10 MiB"), "{err}");
    }

    #[test]
    fn errors_read_like_the_regex_crate() {
        let err = HookPattern::compile("ECHO (").unwrap_err().to_string();
        assert!(err.contains("unclosed group"), "{err}");
    }
}
