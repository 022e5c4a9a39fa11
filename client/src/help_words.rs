//! The server's command words, for completion: asked with `HELP` on a
//! connection of their own when an interactive session starts, so nothing
//! of it shows in the session.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Words learned from the server; empty until (and unless) it answered.
pub type Learned = Arc<Mutex<Vec<String>>>;

/// Most `HELP` lines read: a server with more is not completed past them.
const MAX_LINES: usize = 10_000;

/// Asks the server at `addr` for `HELP`, in the background, and puts the
/// words into `learned` once it answered. A server without `HELP` (or one
/// that does not answer within `timeout`) leaves it empty.
pub fn learn(addr: SocketAddr, timeout: Duration, learned: Learned) {
    let _ = std::thread::Builder::new()
        .name("help".into())
        .spawn(move || {
            if let Some(words) = fetch(addr, timeout) {
                *learned.lock().unwrap_or_else(|e| e.into_inner()) = words;
            }
        });
}

fn fetch(addr: SocketAddr, timeout: Duration) -> Option<Vec<String>> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(b"HELP\nCLOSE\n").ok()?;
    let mut reader = BufReader::new(stream);
    let mut words: Vec<String> = Vec::new();
    let mut line = String::new();
    for _ in 0..MAX_LINES {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        // Every line of the reply but the last is framed with `MSG | `.
        let text = line.trim_end();
        match word(text.strip_prefix("MSG | ").unwrap_or(text)) {
            Some(Ok(())) => return Some(words),
            Some(Err(w)) if !words.contains(&w) => words.push(w),
            _ => {}
        }
    }
    None
}

/// The word of a `HELP` line: `Err(word)` for a command, `Ok(())` for
/// `HELP end`, `None` for another line (the greeting) or a pattern with no
/// word (`*`).
fn word(line: &str) -> Option<Result<(), String>> {
    let rest = line.strip_prefix("HELP ")?;
    let word = rest.split(' ').next()?;
    match word {
        "end" if rest == "end" => Some(Ok(())),
        "*" | "" => None,
        w => Some(Err(w.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::word;

    #[test]
    fn words_of_help_lines() {
        assert_eq!(
            word("HELP GREET (greeter, hook 1) /GREET (\\w+)/"),
            Some(Err("GREET".into()))
        );
        assert_eq!(word("HELP end"), Some(Ok(())));
        assert_eq!(word("HELP * (x, hook 2) /.*/"), None);
        assert_eq!(word("MSG Welcome aboard !"), None);
    }
}
