//! `HELP` and `HELP <command>`: every command the server answers, the
//! host's own first, then each hook in dispatch order, one line each,
//! every line starting with `HELP`, the last being `HELP end` (on the wire,
//! every line but that last one is framed with `MSG | `, as any reply of
//! several lines):
//!
//! ```text
//! HELP CLOSE (built in) CLOSE -- end the session
//! HELP HELLO (hello, hook 1) HELLO -- says hello with the server's name
//! HELP end
//! ```
//!
//! A line is `HELP <word> (<from>) <usage>`, then ` -- <description>` where
//! there is one. The word is what a client completes and what
//! `HELP <command>` looks up. A hook that declares no usage line
//! (`Hook::usage`) is shown by its pattern, between slashes.

use std::fmt::Write;

use abi_stable::std_types::RString;

use crate::dispatch::Dispatcher;
use crate::plugins::{LoadedPlugin, escape};

/// One command, as `HELP` shows it.
pub struct Entry {
    pub word: String,
    /// `built in`, or the plugin and hook number.
    pub from: String,
    pub usage: String,
    pub description: Option<String>,
}

/// The host's own commands, in the order the host checks them; the admin
/// ones only if `admin` (and `AUTH` only if there is a secret).
fn built_in(admin: bool, auth: bool) -> Vec<Entry> {
    let own = |word: &str, usage: &str, description: &str| Entry {
        word: word.into(),
        from: "built in".into(),
        usage: usage.into(),
        description: Some(description.into()),
    };
    let mut entries = Vec::new();
    if auth {
        entries.push(own("AUTH", "AUTH <secret>", "become an admin client"));
    }
    if admin {
        entries.push(own(
            "RELOAD",
            "RELOAD",
            "re-read the config and the plugin files",
        ));
    }
    entries.push(own(
        "CLOSE",
        "CLOSE",
        "end the session: CLOSE CONFIRM, then the server closes",
    ));
    entries.push(own(
        "INFO",
        "INFO",
        "the server's figures, its plugins and their hooks",
    ));
    entries.push(own(
        "HELP",
        "HELP [command]",
        "list the commands, or show one",
    ));
    entries
}

/// How hook number `hook` (from 0) of `plugin` is shown.
pub fn hook_entry(plugin: &LoadedPlugin, hook: usize) -> Entry {
    let hook_ = &plugin.hooks[hook];
    let source = &hook_.pattern.source;
    // The plugin's own words where it gave them, escaped as all plugin
    // text is; else the pattern, which is what the host knows.
    let usage = match hook_.usage.as_str() {
        "" => format!("/{}/", escape::pattern(source)),
        usage => escape::text(usage).to_string(),
    };
    Entry {
        word: command_word(source),
        from: format!("{}, hook {}", escape::text(&plugin.name), hook + 1),
        usage,
        description: Some(escape::text(&hook_.description).to_string()).filter(|d| !d.is_empty()),
    }
}

/// Appends the reply to `HELP` (`topic: None`) or `HELP <topic>` to `out`.
pub fn render(table: &Dispatcher, topic: Option<&str>, admin: bool, auth: bool, out: &mut RString) {
    let hooks = (0..table.route_count()).map(|i| {
        let route = table.route(i);
        hook_entry(&table.plugins()[route.plugin], route.hook)
    });
    let mut s = String::new();
    for entry in built_in(admin, auth).into_iter().chain(hooks) {
        if topic.is_some_and(|t| !t.eq_ignore_ascii_case(&entry.word)) {
            continue;
        }
        let _ = write!(s, "HELP {} ({}) {}", entry.word, entry.from, entry.usage);
        if let Some(description) = &entry.description {
            let _ = write!(s, " -- {description}");
        }
        s.push('\n');
    }
    s.push_str("HELP end\n");
    out.push_str(&s);
}

/// The literal word a pattern starts with (`GREET` for `GREET (\w+)`), or
/// `*` if it starts with anything else.
fn command_word(pattern: &str) -> String {
    let word: String = pattern
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    // `HELLOS?`: the last letter is optional, so the word is one shorter.
    let quantified = pattern[word.len()..].starts_with(['?', '*', '{']);
    let word = if quantified {
        &word[..word.len().saturating_sub(1)]
    } else {
        &word[..]
    };
    if word.is_empty() {
        "*".into()
    } else {
        word.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::command_word;

    #[test]
    fn command_words_of_patterns() {
        assert_eq!(command_word("HELLO"), "HELLO");
        assert_eq!(command_word(r"GREET (\w+)"), "GREET");
        assert_eq!(command_word(r"SLEEP (\d+)"), "SLEEP");
        assert_eq!(command_word("HELLOS?"), "HELLO");
        assert_eq!(command_word(r"NOOP\d+"), "NOOP");
        assert_eq!(command_word(".*"), "*");
        assert_eq!(command_word("(?i)hello"), "*");
    }
}
