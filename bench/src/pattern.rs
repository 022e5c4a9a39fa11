//! What an acceptable reply line looks like.

use anyhow::Context as _;
use regex::bytes::Regex;

/// A reply check compiled from a regular expression.
///
/// Most checks are plain text such as `^\+PONG$`; those are compared as
/// bytes instead of running the regex engine on every reply.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Anything is fine.
    Any,
    /// The literal must occur at the start, at the end, both (whole line) or
    /// anywhere, as the anchors of the source said.
    Literal {
        text: Vec<u8>,
        at_start: bool,
        at_end: bool,
    },
    Regex(Regex),
}

impl Pattern {
    /// Compiles `source`, a regex with the usual unanchored search meaning.
    pub fn new(source: &str) -> anyhow::Result<Pattern> {
        if let Some(literal) = literal_of(source) {
            return Ok(literal);
        }
        let re = Regex::new(source).with_context(|| format!("bad reply pattern `{source}`"))?;
        Ok(Pattern::Regex(re))
    }

    pub fn matches(&self, line: &[u8]) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Literal {
                text,
                at_start,
                at_end,
            } => match (at_start, at_end) {
                (true, true) => line == text.as_slice(),
                (true, false) => line.starts_with(text),
                (false, true) => line.ends_with(text),
                (false, false) => memchr::memmem::find(line, text).is_some(),
            },
            Pattern::Regex(re) => re.is_match(line),
        }
    }
}

/// Recognises a regex that only matches one fixed text, optionally anchored.
fn literal_of(source: &str) -> Option<Pattern> {
    let (at_start, rest) = match source.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, source),
    };
    // A trailing `\$` is an escaped dollar, not an anchor.
    let (at_end, body) = match rest.strip_suffix('$') {
        Some(body) if !body.ends_with('\\') || body.ends_with("\\\\") => (true, body),
        _ => (false, rest),
    };
    let mut text = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // Only escapes of punctuation stand for the character itself.
            let escaped = chars.next()?;
            if escaped.is_ascii_alphanumeric() || !escaped.is_ascii() {
                return None;
            }
            text.push(escaped);
        } else if regex_syntax_meta(c) {
            return None;
        } else {
            text.push(c);
        }
    }
    Some(Pattern::Literal {
        text: text.into_bytes(),
        at_start,
        at_end,
    })
}

fn regex_syntax_meta(c: char) -> bool {
    // `#`, `-`, `&` and `~` are only special in verbose mode or inside a
    // class, both of which need a character from this list first.
    matches!(
        c,
        '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_literal(p: &Pattern) -> bool {
        matches!(p, Pattern::Literal { .. })
    }

    #[test]
    fn literal_fast_path() {
        let p = Pattern::new(r"^\+PONG$").unwrap();
        assert!(is_literal(&p));
        assert!(p.matches(b"+PONG"));
        assert!(!p.matches(b"+PONGX"));
        assert!(!p.matches(b"-ERR"));

        let p = Pattern::new("^MSG Hello from ").unwrap();
        assert!(is_literal(&p));
        assert!(p.matches(b"MSG Hello from host"));
        assert!(!p.matches(b"XMSG Hello from host"));

        let p = Pattern::new("VERSION").unwrap();
        assert!(is_literal(&p));
        assert!(p.matches(b"VERSION 1.6.18"));

        let p = Pattern::new(r"cost \$$").unwrap();
        assert!(is_literal(&p));
        assert!(p.matches(b"the cost $"));
    }

    #[test]
    fn real_regexes() {
        let p = Pattern::new(r"^TIME \d\d\.\d\d\.\d{4} ").unwrap();
        assert!(!is_literal(&p));
        assert!(p.matches(b"TIME 01.02.2025 10:11:12"));
        assert!(!p.matches(b"TIME soon"));
        let p = Pattern::new(r"^a.c$").unwrap();
        assert!(!is_literal(&p));
        assert!(p.matches(b"abc"));
        assert!(Pattern::new("(").is_err());
    }
}
