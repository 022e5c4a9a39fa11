//! Short runs of the real `bench` and `soak` binaries against the real host,
//! so the tools are known to work before anyone relies on their figures.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::{HostStart, build_workspace, plugin_path};

/// Longest a tool run may take here; both runs below last a few seconds.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn host_config(plugins: &[&str]) -> String {
    let mut config = String::from("server_name = \"bench-smoke\"\nmax_line_length = 8192\n");
    for p in plugins {
        let path = plugin_path(p);
        config.push_str(&format!(
            "[[plugin]]\npath = {:?}\n",
            path.display().to_string()
        ));
    }
    config
}

/// Runs `exe` with `args`, bounded by [`RUN_LIMIT`], and parses the JSON
/// object it prints; returns it with the exit status.
fn run_json(exe: &Path, args: &[&str]) -> (Value, std::process::ExitStatus) {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", exe.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the tool") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} ran longer than {RUN_LIMIT:?}", exe.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut stdout).expect("tool stdout");
    }
    if let Some(mut s) = child.stderr.take() {
        s.read_to_string(&mut stderr).expect("tool stderr");
    }
    let json = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{} printed no JSON ({e}); stdout:\n{stdout}\nstderr:\n{stderr}",
            exe.display()
        )
    });
    (json, status)
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number `{key}` in {report}"))
}

#[test]
fn bench_one_second_against_host() {
    build_workspace();
    let host = HostStart::new().config(host_config(&["hello"])).spawn();
    let addr = host.addr().to_string();
    let pid = host.pid().to_string();
    let (report, status) = run_json(
        Path::new(env!("CARGO_BIN_EXE_bench")),
        &[
            "--addr",
            &addr,
            "--cpu-pid",
            &pid,
            "--greeting",
            "^MSG Welcome",
            "--request",
            "HELLO",
            "--expect",
            "^MSG Hello from bench-smoke$",
            "--connections",
            "4",
            "--pipeline",
            "4",
            "--duration",
            "1s",
            "--json",
        ],
    );
    assert!(status.success(), "bench failed: {report}");
    assert!(number(&report, "rps") > 0.0, "{report}");
    assert!(number(&report, "replies") > 0.0, "{report}");
    assert_eq!(number(&report, "errors"), 0.0, "{report}");
    assert_eq!(number(&report, "connected"), 4.0, "{report}");

    // The host answered every request, so it spent CPU on them; no more
    // than every core could give over the run, with room for the clock
    // tick each process's figure may be off by.
    let cpu = number(&report, "server_cpu_s");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let bound = number(&report, "elapsed_s") * cores + 0.1;
    assert!(
        cpu > 0.0 && cpu <= bound,
        "server_cpu_s {cpu} outside (0, {bound}]: {report}"
    );
    let per_request = number(&report, "server_cpu_us_per_req");
    let expected = cpu * 1e6 / number(&report, "replies");
    assert!(
        (per_request - expected).abs() <= expected * 1e-9,
        "{per_request} us per request, expected {expected}: {report}"
    );
}

#[test]
fn bench_over_tls_against_host() {
    build_workspace();
    let pki = test_support::tls::Pki::new();
    let host = HostStart::new()
        .config(host_config(&["hello"]) + &pki.tls_table(""))
        .spawn();
    let addr = host.tls_addr().to_string();
    let ca = pki.ca_cert().display().to_string();
    let (report, status) = run_json(
        Path::new(env!("CARGO_BIN_EXE_bench")),
        &[
            "--addr",
            &addr,
            "--tls",
            "--ca",
            &ca,
            "--greeting",
            "^MSG Welcome",
            "--request",
            "HELLO",
            "--expect",
            "^MSG Hello from bench-smoke$",
            "--connections",
            "2",
            "--pipeline",
            "4",
            "--duration",
            "1s",
            "--json",
        ],
    );
    assert!(status.success(), "bench failed: {report}");
    assert!(number(&report, "replies") > 0.0, "{report}");
    assert_eq!(number(&report, "errors"), 0.0, "{report}");
    assert_eq!(number(&report, "connected"), 2.0, "{report}");
}

#[test]
fn soak_smoke_against_host() {
    build_workspace();
    let host = HostStart::new()
        .config(host_config(&["hello", "testkit"]))
        .spawn();
    let addr = host.addr().to_string();
    let pid = host.pid().to_string();
    let (report, status) = run_json(
        Path::new(env!("CARGO_BIN_EXE_soak")),
        &[
            "--addr",
            &addr,
            "--clients",
            "20",
            "--duration",
            "2s",
            "--max-line",
            "8192",
            "--host-pid",
            &pid,
            "--threads",
            "1",
            "--json",
        ],
    );
    assert!(status.success(), "soak failed: {report}");
    assert_eq!(number(&report, "lost"), 0.0, "{report}");
    assert_eq!(number(&report, "unexpected"), 0.0, "{report}");
    for kind in ["ok", "too_long", "bad_utf8", "plugin_failed"] {
        assert!(number(&report, kind) > 0.0, "no `{kind}` replies: {report}");
    }
    assert!(number(&report, "host_peak_rss_kib") > 0.0, "{report}");
}
