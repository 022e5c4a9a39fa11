//! `soak`: long mixed-traffic run against the host. See `soak --help`.

mod args;
mod client;
mod memory;
mod mix;
mod report;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use bench::greeting::Greeting;
use bench::pattern::Pattern;
use clap::Parser as _;
use tokio::sync::Semaphore;

use crate::args::Args;
use crate::client::Plan;
use crate::mix::Requests;
use crate::report::{SoakReport, Tally};

/// Connection attempts in flight at once.
const CONNECT_CONCURRENCY: usize = 256;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            if let Err(e) = report.print(args.json) {
                if bench::is_broken_pipe(&e) {
                    // The reader went away (`soak | head`): nothing to say.
                } else {
                    eprintln!("soak: {e:#}");
                    return ExitCode::from(2);
                }
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> anyhow::Result<SoakReport> {
    if args.clients == 0 || args.window == 0 {
        bail!("--clients and --window must be at least 1");
    }
    match process_setup::raise_open_files_limit() {
        Ok(limit) if (limit as usize) < args.clients + 64 => eprintln!(
            "soak: warning: open-file limit {limit} is below what {} clients need",
            args.clients
        ),
        Ok(_) => {}
        Err(e) => eprintln!("soak: warning: could not raise the open-file limit: {e}"),
    }
    let threads = args.threads.unwrap_or_else(process_setup::cores);
    let runtime = process_setup::build_runtime(Some(threads))?;
    runtime.block_on(soak(args))
}

async fn soak(args: &Args) -> anyhow::Result<SoakReport> {
    let addr = bench::target::resolve(&args.addr, args.allow_remote).await?;
    let started = Instant::now();
    let deadline = started + args.duration;
    let plan = Arc::new(Plan {
        addr,
        requests: Requests::new(args.mix, args.max_line),
        greeting: Greeting {
            lines: 1,
            pattern: Some(Pattern::new(&args.greeting)?),
            tls: None,
        },
        window: args.window,
        deadline,
        drain_deadline: deadline + args.drain_timeout,
        reply_timeout: args.reply_timeout,
        connect_timeout: args.connect_timeout,
        connecting: Semaphore::new(CONNECT_CONCURRENCY),
        seed: args.seed,
    });
    let watcher = args.host_pid.map(memory::watch);

    let clients: Vec<_> = (0..args.clients as u64)
        .map(|id| tokio::spawn(client::run(id, Arc::clone(&plan))))
        .collect();
    let mut tally = Tally::default();
    for c in clients {
        match c.await {
            Ok(t) => tally.add(t),
            Err(e) => {
                // A client task that died took its outstanding requests
                // with it; count it as a failure rather than hide it.
                tally.unexpected += 1;
                tally.sample(|| format!("client task failed: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let (peak, max_rss) = match watcher {
        Some((peaks, task)) => {
            task.abort();
            let (hwm, rss) = peaks.read();
            // One last read: each process's VmHWM only grows, so this is
            // the peak unless a process left the tree; the polled largest
            // value covers that case.
            let last = args.host_pid.and_then(bench::rss::peak_rss_kib);
            (last.max(hwm), rss)
        }
        None => (None, None),
    };
    let replies = tally.replies();
    let passed = tally.lost == 0 && tally.unexpected == 0 && replies > 0;
    let samples = std::mem::take(&mut tally.samples);
    Ok(SoakReport {
        addr: addr.to_string(),
        clients: args.clients,
        elapsed_s: elapsed,
        replies,
        rps: if elapsed > 0.0 {
            replies as f64 / elapsed
        } else {
            0.0
        },
        tally,
        host_pid: args.host_pid,
        host_peak_rss_kib: peak,
        host_max_rss_kib: max_rss,
        samples,
        passed,
    })
}
