//! Idle mode: hold many silent connections to measure what each costs the
//! server.

use std::time::Instant;

use anyhow::bail;
use bench::conn;
use bench::rss;

use crate::args::IdleArgs;
use crate::report::IdleReport;

/// Idle connections read at most a greeting, so a small buffer will do and
/// keeps this tool's own memory modest at tens of thousands of sockets.
const IDLE_BUFFER: usize = 256;

pub async fn run(args: &IdleArgs) -> anyhow::Result<IdleReport> {
    let addr = bench::target::resolve(&args.target.addr, args.target.allow_remote).await?;
    let greeting = args.target.greeting()?;
    let mut report = IdleReport {
        addr: addr.to_string(),
        connections: args.connections,
        rss_pid: args.rss_pid,
        rss_before_kib: args.rss_pid.and_then(rss::rss_kib),
        pss_before_kib: args.rss_pid.and_then(rss::pss_kib),
        ..IdleReport::default()
    };
    if args.rss_pid.is_some() && report.rss_before_kib.is_none() {
        bail!(
            "cannot read /proc/{}/status",
            args.rss_pid.unwrap_or_default()
        );
    }

    let started = Instant::now();
    let opened = conn::open_many(
        addr,
        args.connections,
        &greeting,
        args.target.connect_timeout,
        args.connect_concurrency,
        IDLE_BUFFER,
    )
    .await;
    report.open_s = started.elapsed().as_secs_f64();
    let mut conns = Vec::with_capacity(opened.len());
    for result in opened {
        match result {
            Ok(c) => conns.push(c),
            Err(e) => {
                report.failed += 1;
                if report.first_error.is_none() {
                    report.first_error = Some(format!("connect: {e}"));
                }
            }
        }
    }
    report.opened = conns.len();

    let held_from = Instant::now();
    tokio::time::sleep(args.settle).await;
    report.rss_kib = args.rss_pid.and_then(rss::rss_kib);
    report.pss_kib = args.rss_pid.and_then(rss::pss_kib);
    report.bytes_per_conn = per_conn(report.rss_before_kib, report.rss_kib, report.opened);
    report.pss_bytes_per_conn = per_conn(report.pss_before_kib, report.pss_kib, report.opened);
    if let Some(rest) = args.hold.checked_sub(held_from.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    // An idle server writes nothing, so anything readable (data or end of
    // stream) means it gave up on the connection.
    let mut scratch = [0u8; 256];
    for c in &conns {
        match c.stream.try_read(&mut scratch) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => report.closed_by_server += 1,
        }
    }
    Ok(report)
}

/// Growth from `before` to `after` (KiB) in bytes per opened connection.
fn per_conn(before: Option<u64>, after: Option<u64>, opened: usize) -> Option<f64> {
    let (before, after) = (before?, after?);
    (opened > 0).then(|| (after as f64 - before as f64) * 1024.0 / opened as f64)
}
