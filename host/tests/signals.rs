//! Signals an operator or a service manager may send: none but SIGKILL
//! ends the host without its graceful stop.

use std::time::Duration;

use test_support::{Conn, HostProcess, HostStart, plugin_entry, wait_until};

fn host() -> HostProcess {
    HostStart::new()
        .config(format!("server_name = \"h\"\n{}", plugin_entry("hello")))
        .spawn()
}

fn kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process this test started; no memory is touched.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

#[test]
fn signals_whose_default_would_kill_are_logged_and_serving_goes_on() {
    let host = host();
    let (mut conn, _) = Conn::open(host.addr());
    let serving = host.serving_pid();
    for (signal, name) in [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGALRM, "SIGALRM"),
    ] {
        let seen = host.stderr().matches(name).count();
        // To the supervisor and to the serving process, as a process group
        // signal would reach both.
        kill(host.pid(), signal);
        kill(serving, signal);
        assert!(
            wait_until(Duration::from_secs(10), || host
                .stderr()
                .matches(name)
                .count()
                >= seen + 2),
            "{name} not logged by both processes: {}",
            host.stderr()
        );
        assert_eq!(conn.ask("HELLO"), "MSG Hello from h", "after {name}");
        let (mut fresh, greeting) = Conn::open(host.addr());
        assert_eq!(greeting, "MSG Welcome aboard !", "after {name}");
        assert_eq!(fresh.ask("HELLO"), "MSG Hello from h");
    }
    assert_eq!(
        host.serving_pid(),
        serving,
        "the serving process was replaced"
    );
}

#[test]
fn sigquit_stops_the_host_gracefully() {
    let mut host = host();
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("HELLO"), "MSG Hello from h");
    host.signal(libc::SIGQUIT);
    assert_eq!(conn.line(), "MSG Server shutting down");
    assert!(conn.is_closed());
    let status = host
        .wait_exit(Duration::from_secs(15))
        .expect("host did not exit");
    assert!(status.success(), "{status:?}");
}
