//! plugin-api 0.2 over real sockets: a hook that passes lines on
//! (middleware), replies given later from another thread, in order with
//! the requests pipelined behind them, and per-connection state.

use std::time::{Duration, Instant};

use test_support::{Conn, HostProcess, HostStart, WAIT, plugin_entry, wait_until};

/// gatekeeper first, so that it sees every line; then hello and testkit,
/// which both answer `HELLO`.
fn host(extra: &str) -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"testhost\"\n{extra}{}{}{}",
            plugin_entry("gatekeeper"),
            plugin_entry("hello"),
            plugin_entry("testkit")
        ))
        .spawn()
}

#[test]
fn a_declining_middleware_gates_lines_then_passes_them_on_in_config_order() {
    let host = host("");
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "ERR login first");
    assert_eq!(c.ask("ECHO x"), "ERR login first");
    assert_eq!(c.ask("LOGIN ada"), "MSG welcome ada");
    // Passed on to the next hook whose pattern matches: hello's, not
    // testkit's, which comes after it.
    assert_eq!(c.ask("HELLO"), "MSG Hello from testhost");
    assert_eq!(c.ask("ECHO x"), "MSG x");
    // A line no later hook takes is not found, as without the middleware.
    assert_eq!(c.ask("NOSUCH"), "MSG Command not found");

    // The login is this connection's state: another one starts logged out.
    let (mut other, _) = Conn::open(host.addr());
    assert_eq!(other.ask("HELLO"), "ERR login first");
    let me = c.ask("ME");
    assert!(me.starts_with("MSG ada "), "{me}");
}

#[test]
fn a_later_reply_comes_from_another_thread_in_order_with_requests_behind_it() {
    let host = host("");
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("LOGIN ada"), "MSG welcome ada");
    let sent = Instant::now();
    // Pipelined in one write: the first is answered 300 ms later, from
    // another thread; the two behind it wait for it.
    c.send_raw(b"LATER 300 first\nHELLO\nLATER 0 third\n");
    assert_eq!(c.line(), "MSG first");
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "answered before the plugin gave its reply"
    );
    assert_eq!(c.line(), "MSG Hello from testhost");
    assert_eq!(c.line(), "MSG third");

    // Meanwhile the host thread was free: another client, whose requests
    // take no time, is answered while this one's reply is pending.
    let (mut other, _) = Conn::open(host.addr());
    assert_eq!(other.ask("LOGIN bob"), "MSG welcome bob");
    c.send("LATER 2000 slow");
    let asked = Instant::now();
    assert_eq!(other.ask("HELLO"), "MSG Hello from testhost");
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "another connection waited {:?} for a pending reply",
        asked.elapsed()
    );
    assert_eq!(c.line(), "MSG slow");
}

#[test]
fn a_reply_that_never_comes_times_out_and_a_dropped_one_is_an_error() {
    let host = host("hook_timeout_secs = 1\n");
    let (mut c, _) = Conn::open(host.addr());
    let asked = Instant::now();
    c.send_raw(b"NEVER\nLATER 0 after\n");
    assert_eq!(c.line(), "ERR plugin gatekeeper timed out");
    assert!(asked.elapsed() >= Duration::from_millis(900));
    assert_eq!(c.line(), "MSG after", "the connection goes on");
    assert_eq!(
        c.ask("DROP"),
        "ERR the plugin dropped this request without a reply"
    );
    assert!(
        wait_until(WAIT, || host.stderr().contains("pending reply timed out")),
        "{}",
        host.stderr()
    );
}
