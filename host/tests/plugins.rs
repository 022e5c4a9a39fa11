//! Loading several plugins: order, priority, settings, faults, optional ones.

use std::time::{Duration, Instant};

use test_support::{Conn, HostStart, WAIT, plugin_entry, wait_until};

/// A config loading plugin `name` with one line of settings.
fn with_settings(name: &str, settings: &str) -> String {
    format!("{}[plugin.settings]\n{settings}\n", plugin_entry(name))
}

#[test]
fn several_plugins_load_as_distinct_libraries() {
    // If the loader handed back the first module for every library, `TIME`
    // and `ECHO` would not be served.
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}{}{}",
            plugin_entry("hello"),
            plugin_entry("time"),
            plugin_entry("testkit")
        ))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
    assert!(c.ask("TIME").starts_with("TIME "));
    assert_eq!(c.ask("ECHO x"), "MSG x");
}

#[test]
fn config_order_decides_which_overlapping_hook_answers() {
    let hello_first = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn();
    let testkit_first = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}{}",
            plugin_entry("testkit"),
            plugin_entry("hello")
        ))
        .spawn();
    let (mut a, _) = Conn::open(hello_first.addr());
    let (mut b, _) = Conn::open(testkit_first.addr());
    assert_eq!(a.ask("HELLO"), "MSG Hello from h");
    assert_eq!(b.ask("HELLO"), "MSG testkit says hello");
}

#[test]
fn a_plugin_setting_reaches_the_plugin() {
    let host = HostStart::new()
        .config(with_settings("testkit", "greeting = \"bonjour\""))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("SETTING"), "MSG greeting=bonjour");
}

#[test]
fn the_time_format_is_a_setting() {
    let host = HostStart::new()
        .config(with_settings("time", "format = \"%Y\""))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    let reply = c.ask("TIME");
    let year = reply.strip_prefix("TIME ").unwrap();
    assert!(
        year.len() == 4 && year.parse::<u32>().unwrap() >= 2024,
        "{reply:?}"
    );
}

#[test]
fn a_panicking_hook_answers_err_and_the_host_goes_on() {
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn();
    let (mut bystander, _) = Conn::open(host.addr());
    let (mut c, _) = Conn::open(host.addr());
    let reply = c.ask("PANIC");
    assert!(
        reply.starts_with("ERR plugin testkit failed: testkit was asked to panic"),
        "{reply:?}"
    );
    // The same connection and another one are both still served.
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
    assert_eq!(bystander.ask("HELLO"), "MSG Hello from h");
    assert!(host.stderr().contains("hook panicked"), "{}", host.stderr());
}

#[test]
fn an_optional_plugin_that_fails_is_skipped_and_the_rest_serve() {
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}optional = true\n[plugin.settings]\nfail_init = \"no database\"\n\n\
             [[plugin]]\nname = \"not-there\"\noptional = true\n\n{}",
            plugin_entry("testkit"),
            plugin_entry("hello")
        ))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
    assert_eq!(c.ask("ECHO x"), "MSG Command not found");
    let log = host.stderr();
    assert!(
        log.contains("skipping optional plugin `") && log.contains("refused to start: no database"),
        "{log}"
    );
    assert!(
        log.contains("plugin `not-there`") && log.contains("library not found"),
        "{log}"
    );
}

#[test]
fn a_slow_blocking_hook_does_not_delay_other_connections() {
    // More sleepers than worker threads, so that inline they would hold
    // every worker.
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\nworker_threads = 2\n{}{}",
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .arg("--log-level=debug")
        .spawn();
    let mut sleepers: Vec<Conn> = (0..4).map(|_| Conn::open(host.addr()).0).collect();
    // Timed from before the first SLEEP: run inline, two sleepers hold both
    // workers, and the others are not even taken until one has finished.
    let start = Instant::now();
    for s in &mut sleepers {
        s.send("SLEEP 4000");
    }
    // The host logs each request as it takes it, before calling the hook.
    let taken = wait_until(WAIT, || {
        host.stderr().matches("request=\"SLEEP 4000\"").count() == sleepers.len()
    });
    assert!(taken, "the host never took every SLEEP: {}", host.stderr());
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "MSG Hello from h");
    // Under the hook's 4 s, so every sleeper was still in its hook.
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_millis(3000),
        "taking the SLEEPs, connecting and HELLO took {waited:?}: {}",
        host.stderr()
    );
    for s in &mut sleepers {
        assert_eq!(s.line(), "MSG slept 4000");
    }
}

#[test]
fn a_multi_line_panic_or_error_is_still_one_reply_line() {
    let host = HostStart::new()
        .config(format!("server_name = \"h\"\n{}", plugin_entry("testkit")))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    c.send("PANIC2\nFAIL2\nBADERR\nECHO after");
    let panic = c.line();
    assert!(
        panic.starts_with(
            "ERR plugin testkit failed: assertion `left == right` failed: a multi-line panic message"
        ) && panic.contains(r#"right: "not this line""#),
        "{panic:?}"
    );
    assert_eq!(c.line(), "ERR first line second line third line");
    let bad = c.line();
    assert!(
        bad.starts_with("ERR plugin testkit failed: BadError cannot be displayed"),
        "{bad:?}"
    );
    assert_eq!(c.line(), "MSG after", "replies are still in step");
}

#[test]
fn a_plugin_that_panics_when_dropped_does_not_spoil_the_exit() {
    let host = HostStart::new()
        .config(with_settings("testkit", "panic_on_drop = true"))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("ECHO x"), "MSG x");
    drop(c);
    assert!(host.terminate().success());
    let check = HostStart::new()
        .config(with_settings("testkit", "panic_on_drop = true"))
        .arg("--check")
        .run();
    assert!(check.status.success(), "{}", check.stderr);
}
