//! `bench` against replies of several lines and pushed lines: the host's
//! framing, read by the load run and the fan-out run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use test_support::{HostProcess, HostStart, plugin_entry, wait_or_kill};

/// Longest a `bench` run may take here; each lasts about a second.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn host(plugin: &str) -> HostProcess {
    HostStart::new().config(plugin_entry(plugin)).spawn()
}

/// Runs `bench` with `args` against `host`, bounded, and parses its JSON.
fn bench(host: &HostProcess, args: &[&str]) -> (Value, bool) {
    let mut child = Command::new(Path::new(env!("CARGO_BIN_EXE_bench")))
        .args(args)
        .args([
            "--addr",
            &host.addr().to_string(),
            "--greeting",
            "^MSG Welcome",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn bench");
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout));
    let status = wait_or_kill(&mut child, RUN_LIMIT);
    let text = reader.join().expect("reader").expect("bench stdout");
    let report = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("bench printed no JSON ({e}): {text}"));
    (report, status.success())
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{key}` in {report}"))
}

#[test]
fn a_reply_of_several_lines_counts_once_and_its_last_line_is_checked() {
    let host = host("testkit");
    let (report, ok) = bench(
        &host,
        &[
            "--request",
            "TWO",
            "--expect",
            "^MSG two$",
            "-c",
            "2",
            "-P",
            "8",
            "-d",
            "1s",
        ],
    );
    assert!(ok, "{report}");
    assert_eq!(number(&report, "mismatched"), 0.0, "{report}");
    assert_eq!(number(&report, "errors"), 0.0, "{report}");
    assert!(number(&report, "replies") > 0.0, "{report}");
    assert_eq!(
        number(&report, "replies"),
        number(&report, "requests"),
        "{report}"
    );
}

#[test]
fn fanout_delivers_every_say_to_every_subscriber() {
    let host = host("chat");
    let pid = host.pid().to_string();
    let (report, ok) = bench(
        &host,
        &[
            "fanout",
            "--protocol",
            "chat",
            "-s",
            "50",
            "-d",
            "1s",
            "--settle",
            "200ms",
            "--cpu-pid",
            &pid,
        ],
    );
    assert!(ok, "{report}");
    assert_eq!(number(&report, "connected"), 50.0, "{report}");
    assert_eq!(number(&report, "lost_subscribers"), 0.0, "{report}");
    let published = number(&report, "published");
    assert!(published > 0.0, "{report}");
    assert_eq!(number(&report, "expected"), published * 50.0, "{report}");
    assert_eq!(number(&report, "delivered"), published * 50.0, "{report}");
    assert!(number(&report, "server_cpu_s") > 0.0, "{report}");
}
