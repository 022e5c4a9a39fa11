//! The server's `INFO` lines, laid out for people: one line per server,
//! plugin and hook, fields as `name value`, latency with its unit.
//!
//! The server sends `INFO <kind> <fields>`, fields `key=value`, except a
//! last `file=` or `pattern=` field that runs to the end of the line;
//! `INFO end` closes the reply.

/// How `INFO <kind> <rest>` is shown.
pub fn show(kind: &str, rest: &str) -> String {
    if kind == "end" {
        return String::new();
    }
    let (head, fields) = split_fields(rest);
    let mut shown: Vec<String> = Vec::new();
    for (key, value) in fields {
        let value = match key {
            k if k.ends_with("_us") && value != "-" => format!("{value} µs"),
            "uptime_secs" => format!("{value} s"),
            _ => value.to_owned(),
        };
        let key = key.trim_end_matches("_us").trim_end_matches("_secs");
        shown.push(format!("{} {value}", key.replace('_', " ")));
    }
    let label = match kind {
        "hook" => format!("  hook {}", head.replace(' ', " #")),
        _ if head.is_empty() => kind.to_owned(),
        _ => format!("{kind} {head}"),
    };
    format!("{label:<20} {}", shown.join(", "))
}

/// The words before the first `key=value` field, and the fields.
fn split_fields(rest: &str) -> (String, Vec<(&str, &str)>) {
    let mut head = Vec::new();
    let mut fields = Vec::new();
    let mut remaining = rest;
    while !remaining.is_empty() {
        let (word, tail) = remaining.split_once(' ').unwrap_or((remaining, ""));
        match word.split_once('=') {
            // The last field: the rest of the line, spaces and all.
            Some((key @ ("file" | "pattern"), _)) => {
                fields.push((key, &remaining[key.len() + 1..]));
                break;
            }
            Some((key, value)) => fields.push((key, value)),
            None if fields.is_empty() => head.push(word),
            None => {}
        }
        remaining = tail;
    }
    (head.join(" "), fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_laid_out_for_people() {
        assert_eq!(
            show("server", "version=0.1.0 uptime_secs=12 connections_total=3"),
            "server               version 0.1.0, uptime 12 s, connections total 3"
        );
        assert_eq!(
            show(
                "hook",
                "hello 1 calls=5 latency_mean_us=1.5 latency_p99_us=- pattern=HELLO (\\w+) x"
            ),
            "  hook hello #1      calls 5, latency mean 1.5 µs, latency p99 -, pattern HELLO (\\w+) x"
        );
        assert_eq!(show("end", ""), "");
    }
}
