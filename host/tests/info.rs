//! `INFO`: its counts match the requests a client sent.

use std::collections::HashMap;

use test_support::{Conn, HostStart, WAIT, plugin_entry, wait_until};

/// The `INFO` reply, up to `INFO end`, as lines.
fn info(conn: &mut Conn) -> Vec<String> {
    conn.ask_lines("INFO", "INFO")
}

/// The `key=value` fields of the line that starts with `prefix`.
fn fields(lines: &[String], prefix: &str) -> HashMap<String, String> {
    let line = lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:#?}"));
    line.split(' ')
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn number(fields: &HashMap<String, String>, key: &str) -> u64 {
    fields[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {fields:?}"))
}

#[test]
fn info_counts_match_the_requests_sent() {
    let host = HostStart::new()
        .config(format!(
            // Admin access (loopback) for the plugin files.
            "{}{}hook_timeout_secs = 1\n[admin]\n",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn();
    // A connection that comes and goes.
    let (mut gone, _) = Conn::open(host.addr());
    assert_eq!(gone.ask("CLOSE"), "CLOSE CONFIRM");
    let (mut conn, _) = Conn::open(host.addr());
    let mut sent = 0;
    for _ in 0..150 {
        assert!(conn.ask("HELLO").starts_with("MSG Hello from"));
        sent += 1;
    }
    for _ in 0..7 {
        assert!(conn.ask("FAIL").starts_with("ERR "));
        sent += 1;
    }
    for _ in 0..3 {
        assert!(conn.ask("PANIC").starts_with("ERR plugin testkit failed"));
        sent += 1;
    }
    assert_eq!(conn.ask("NOSUCH"), "MSG Command not found");
    assert_eq!(conn.ask("SLEEP 1500"), "ERR plugin testkit timed out");
    sent += 2;

    // Until the server has seen the first connection go.
    let mut lines = Vec::new();
    let mut infos = 0;
    assert!(wait_until(WAIT, || {
        lines = info(&mut conn);
        infos += 1;
        number(&fields(&lines, "INFO server "), "connections") == 1
    }));
    let server = fields(&lines, "INFO server ");
    // Every line counts, INFO and the other connection's CLOSE included.
    assert_eq!(number(&server, "requests"), sent + infos + 1, "{server:?}");
    assert_eq!(number(&server, "connections_total"), 2, "{server:?}");
    let serving = fields(&lines, "INFO serving ");
    assert_eq!(number(&serving, "pid"), u64::from(host.serving_pid()));
    assert_eq!(number(&serving, "restarts"), 0);
    assert_eq!(number(&serving, "disabled_hooks"), 0);
    let hello = fields(&lines, "INFO plugin hello ");
    assert!(hello["file"].ends_with("libhello.so"), "{hello:?}");
    assert!(number(&hello, "loaded_unix") > 1_700_000_000);

    let hook = fields(&lines, "INFO hook hello 1 ");
    assert_eq!(number(&hook, "calls"), 150);
    assert_eq!(number(&hook, "errors"), 0);
    // The first 100 calls ran on blocking threads, each timed.
    assert!(
        hook["latency_mean_us"].parse::<f64>().unwrap() > 0.0,
        "{hook:?}"
    );
    assert!(
        hook["latency_p99_us"].parse::<f64>().unwrap() > 0.0,
        "{hook:?}"
    );
    let fail = fields(&lines, "INFO hook testkit 2 ");
    assert_eq!((number(&fail, "calls"), number(&fail, "errors")), (7, 7));
    let panic = fields(&lines, "INFO hook testkit 1 ");
    assert_eq!((number(&panic, "calls"), number(&panic, "panics")), (3, 3));
    let sleep = fields(&lines, "INFO hook testkit 3 ");
    assert_eq!(
        (number(&sleep, "calls"), number(&sleep, "timeouts")),
        (1, 1)
    );
    // Seven calls are too few to earn a place inline, and a call that
    // timed out sends its hook to blocking threads for good. (Whether
    // hello's 150 quick calls earned it depends on the machine's load;
    // `Conn::make_inline` waits for it where a test needs it.)
    assert_eq!(fail["runs"], "blocking", "{fail:?}");
    assert_eq!(sleep["runs"], "blocking", "{sleep:?}");
    assert!(
        matches!(hook["runs"].as_str(), "inline" | "blocking"),
        "{hook:?}"
    );
    // testkit's own HELLO lies behind hello's, and was never called.
    assert_eq!(number(&fields(&lines, "INFO hook testkit 5 "), "calls"), 0);

    // A reload that keeps the instances keeps their counts.
    let out = host.reload();
    assert!(out.status.success(), "{}", out.stderr);
    let lines = info(&mut conn);
    assert_eq!(number(&fields(&lines, "INFO serving "), "reloads"), 1);
    assert_eq!(number(&fields(&lines, "INFO hook hello 1 "), "calls"), 150);
    assert!(host.terminate().success());
}
