//! The wire protocol, over a real socket, against the real host binary
//! with the real compiled plugins.

use test_support::{Conn, HostProcess, HostStart, plugin_entry};

fn host() -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"testhost\"\n{}{}{}",
            plugin_entry("hello"),
            plugin_entry("time"),
            plugin_entry("testkit")
        ))
        .spawn()
}

#[test]
fn greeting_then_hello() {
    let host = host();
    let (mut c, greeting) = Conn::open(host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(c.ask("HELLO"), "MSG Hello from testhost");
}

#[test]
fn time_has_the_original_format() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    let reply = c.ask("TIME");
    let re = regex::Regex::new(r"^TIME \d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}$").unwrap();
    assert!(re.is_match(&reply), "{reply:?}");
}

#[test]
fn close_is_confirmed_then_the_connection_ends() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("CLOSE"), "CLOSE CONFIRM");
    assert!(c.is_closed());
}

#[test]
fn unknown_lines_are_not_found() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("NOPE"), "MSG Command not found");
    // Patterns match whole lines: a prefix or suffix is not enough.
    assert_eq!(c.ask("HELLO THERE"), "MSG Command not found");
    assert_eq!(c.ask("XHELLO"), "MSG Command not found");
    assert_eq!(c.ask(""), "MSG Command not found");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    let mut batch = String::new();
    for i in 0..500 {
        batch.push_str(&format!("ECHO {i}\nHELLO\n"));
    }
    c.send_raw(batch.as_bytes());
    for i in 0..500 {
        assert_eq!(c.line(), format!("MSG {i}"));
        assert_eq!(c.line(), "MSG Hello from testhost");
    }
}

#[test]
fn crlf_and_telnet_line_endings() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    c.send_raw(b"HELLO\r\nECHO a b\r\nHELLO\r\0ECHO x\r\n");
    assert_eq!(c.line(), "MSG Hello from testhost");
    assert_eq!(c.line(), "MSG a b", "the \\r must not reach the hook");
    assert_eq!(c.line(), "MSG Hello from testhost");
    assert_eq!(c.line(), "MSG x");
}

#[test]
fn a_line_split_across_packets_is_one_request() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    c.send_raw(b"HEL");
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.send_raw(b"LO\n");
    assert_eq!(c.line(), "MSG Hello from testhost");
}

#[test]
fn hooks_get_captures_and_connection_context() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("ECHO named group"), "MSG named group");
    let who = c.ask("WHO");
    let local = c.stream().local_addr().unwrap();
    assert!(
        who.starts_with(&format!("MSG peer={local} connection=")),
        "{who:?}"
    );
    let (mut other, _) = Conn::open(host.addr());
    let who2 = other.ask("WHO");
    let id = |s: &str| s.rsplit('=').next().unwrap().parse::<u64>().unwrap();
    assert_ne!(id(&who), id(&who2), "connection ids must differ");
}

#[test]
fn a_hook_may_answer_several_lines_and_close() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    c.send("TWO");
    assert_eq!(
        c.line(),
        "MSG | MSG one",
        "a line with more to come is marked"
    );
    assert_eq!(c.line(), "MSG two");
    assert_eq!(c.ask("BYE"), "MSG bye");
    assert!(c.is_closed());
}

#[test]
fn a_last_line_without_newline_is_answered_when_the_client_half_closes() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    c.send_raw(b"HELLO");
    c.stream().shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.line(), "MSG Hello from testhost");
    assert!(c.is_closed());
}

#[test]
fn hook_errors_become_err_lines_without_partial_output() {
    let host = host();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("FAIL"), "ERR testkit failed on purpose");
    assert_eq!(c.ask("HELLO"), "MSG Hello from testhost");
}
