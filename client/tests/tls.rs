//! `--tls`: the real client against the real host's `[tls]` listener, with
//! certificates made for each test.

mod common;

use std::process::Command;

use common::*;
use test_support::tls::Pki;
use test_support::{HostProcess, HostStart};

/// The host with hello and time, and a `[tls]` table with `extra` lines.
fn tls_host(pki: &Pki, extra: &str) -> HostProcess {
    test_support::build_workspace();
    let config = format!(
        "server_name = \"testhost\"\n\
         [[plugin]]\npath = \"{}\"\n\
         [[plugin]]\npath = \"{}\"\n{}",
        test_support::plugin_path("hello").display(),
        test_support::plugin_path("time").display(),
        pki.tls_table(extra),
    );
    HostStart::new().config(config).spawn()
}

/// The client for the host's TLS address, `--tls --ca` this PKI's CA.
fn tls_cmd(host: &HostProcess, pki: &Pki) -> Command {
    tls_cmd_trusting(host, &pki.ca_cert())
}

fn tls_cmd_trusting(host: &HostProcess, ca: &std::path::Path) -> Command {
    let addr = host.tls_addr();
    let mut cmd = Command::new(CLIENT);
    cmd.arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .arg("--tls")
        .arg("--ca")
        .arg(ca)
        .env_remove("CLIENT_HISTORY_FILE");
    cmd
}

#[test]
fn one_shot_and_pipe_mode_over_tls() {
    let pki = Pki::new();
    let host = tls_host(&pki, "");
    let mut cmd = tls_cmd(&host, &pki);
    cmd.args(["-c", "HELLO", "-c", "NOPE"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout, "Hello from testhost\nCommand not found\n");
    assert_eq!(out.stderr, "");
    // Pipe mode: the end of input sends CLOSE through the relay, and its
    // reply comes back before the client exits.
    let input: String = (0..200).map(|_| "HELLO\n").collect();
    let out = run(tls_cmd(&host, &pki), input.as_bytes());
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 200, "{out:?}");
    assert!(
        out.stdout.lines().all(|l| l == "Hello from testhost"),
        "{out:?}"
    );
}

#[test]
fn the_server_name_is_checked() {
    let pki = Pki::new();
    let host = tls_host(&pki, "");
    // The certificate names localhost and 127.0.0.1, not this.
    let mut cmd = tls_cmd(&host, &pki);
    cmd.args(["--server-name", "elsewhere.example", "-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_CANNOT_CONNECT), "{out:?}");
    assert!(out.stderr.contains("TLS handshake failed"), "{out:?}");
    let mut cmd = tls_cmd(&host, &pki);
    cmd.args(["--server-name", "localhost", "-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
}

#[test]
fn a_server_signed_by_an_untrusted_ca_is_refused() {
    let pki = Pki::new();
    let host = tls_host(&pki, "");
    // Trusting only the other CA.
    let mut cmd = tls_cmd_trusting(&host, &pki.path("other-ca.pem"));
    cmd.args(["-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_CANNOT_CONNECT), "{out:?}");
    assert!(out.stderr.contains("TLS handshake failed"), "{out:?}");
    assert_eq!(out.stdout, "");
}

#[test]
fn a_client_certificate_is_presented_when_given() {
    let pki = Pki::new();
    let host = tls_host(&pki, &format!("client_ca = {:?}\n", pki.ca_cert()));
    let (cert, key) = pki.client_cert();
    let mut cmd = tls_cmd(&host, &pki);
    cmd.arg("--cert").arg(&cert).arg("--key").arg(&key);
    cmd.args(["-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_eq!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout, "Hello from testhost\n");
    // Without it the host refuses the connection: no reply, no success.
    let mut cmd = tls_cmd(&host, &pki);
    cmd.args(["-c", "HELLO"]);
    let out = run(cmd, b"");
    assert_ne!(out.code, Some(EXIT_OK), "{out:?}");
    assert_eq!(out.stdout, "");
}

#[test]
fn tls_options_need_tls() {
    let pki = Pki::new();
    let out = run(
        {
            let mut cmd = Command::new(CLIENT);
            cmd.arg("--ca").arg(pki.ca_cert()).args(["-c", "HELLO"]);
            cmd
        },
        b"",
    );
    assert_eq!(out.code, Some(EXIT_USAGE), "{out:?}");
}
