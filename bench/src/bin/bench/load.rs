//! The load run: every connection writes a pipeline window of requests,
//! waits for all their replies, and repeats until time or budget run out.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bench::conn::{self, Conn};
use bench::pattern::Pattern;
use bench::watchdog::Watchdog;

use crate::args::LoadArgs;
use crate::latency::{Latencies, Recorder};
use crate::report::{ConnOutcome, LoadReport};

/// Connection attempts in flight at once while setting up.
const CONNECT_CONCURRENCY: usize = 256;

/// What every connection shares during the run.
struct Plan {
    /// The request line repeated `pipeline` times, written in one call.
    window: Vec<u8>,
    request_len: usize,
    pipeline: usize,
    expect: Pattern,
    deadline: Instant,
    reply_timeout: Duration,
    /// Requests still to be sent, when the run is bounded by count.
    budget: Option<AtomicU64>,
}

impl Plan {
    /// How many requests the next window may carry (0 = stop).
    fn claim(&self) -> usize {
        let Some(budget) = &self.budget else {
            return self.pipeline;
        };
        let want = self.pipeline as u64;
        match budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
            (left > 0).then(|| left.saturating_sub(want))
        }) {
            Ok(left) => left.min(want) as usize,
            Err(_) => 0,
        }
    }
}

pub async fn run(args: &LoadArgs) -> anyhow::Result<LoadReport> {
    if args.connections == 0 || args.pipeline == 0 {
        bail!("--connections and --pipeline must be at least 1");
    }
    let addr = bench::target::resolve(&args.target.addr, args.target.allow_remote).await?;
    let greeting = args.target.greeting()?;
    let expect = match &args.expect {
        Some(re) => Pattern::new(re)?,
        None => Pattern::Any,
    };
    let terminator: &[u8] = if args.crlf { b"\r\n" } else { b"\n" };
    let mut request = args.request.as_bytes().to_vec();
    request.extend_from_slice(terminator);

    let opened = conn::open_many(
        addr,
        args.connections,
        &greeting,
        args.target.connect_timeout,
        CONNECT_CONCURRENCY,
        16 * 1024,
    )
    .await;
    let mut report = LoadReport::new(addr, args);
    let mut conns = Vec::with_capacity(opened.len());
    for result in opened {
        match result {
            Ok(c) => conns.push(c),
            Err(e) => report.connect_failed(&e),
        }
    }
    if conns.is_empty() {
        bail!(
            "no connection to {addr} could be opened: {}",
            report.first_error.as_deref().unwrap_or("unknown error")
        );
    }

    // Read as close to the measured window as possible, so that neither
    // the connection setup nor the gap between runs counts.
    let cpu_before = match args.cpu_pid {
        Some(pid) => Some(
            bench::cpu::tree_cpu_seconds(pid)
                .with_context(|| format!("cannot read /proc/{pid}/stat"))?,
        ),
        None => None,
    };
    let started = Instant::now();
    let plan = Arc::new(Plan {
        window: request.repeat(args.pipeline),
        request_len: request.len(),
        pipeline: args.pipeline,
        expect,
        deadline: started + args.time_limit(),
        reply_timeout: args.reply_timeout,
        budget: args.requests.map(AtomicU64::new),
    });
    let latencies = Latencies::new()?;
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(drive(c, Arc::clone(&plan), latencies.recorder())))
        .collect();
    for task in tasks {
        match task.await {
            Ok(outcome) => report.add(outcome),
            Err(e) => report.add(ConnOutcome {
                error: Some(io::Error::other(e)),
                ..ConnOutcome::default()
            }),
        }
    }
    let elapsed = started.elapsed();
    // A server that died during the run has no figure to give.
    let cpu_after = args.cpu_pid.and_then(bench::cpu::tree_cpu_seconds);
    report.finish(elapsed, &latencies.snapshot());
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        report.server_cpu(after - before);
    }
    Ok(report)
}

async fn drive(mut conn: Conn, plan: Arc<Plan>, mut latencies: Recorder) -> ConnOutcome {
    let mut outcome = ConnOutcome::default();
    let mut watchdog = Watchdog::new(plan.reply_timeout);
    if let Err(e) = windows(
        &mut conn,
        &plan,
        &mut latencies,
        &mut watchdog,
        &mut outcome,
    )
    .await
    {
        outcome.error = Some(e);
    }
    outcome
}

async fn windows(
    conn: &mut Conn,
    plan: &Plan,
    latencies: &mut Recorder,
    watchdog: &mut Watchdog,
    outcome: &mut ConnOutcome,
) -> io::Result<()> {
    while Instant::now() < plan.deadline {
        let count = plan.claim();
        if count == 0 {
            break;
        }
        let sent_at = Instant::now();
        watchdog.progress(sent_at);
        let window = &plan.window[..count * plan.request_len];
        watchdog.guard(conn.stream.send(window)).await?;
        outcome.sent += count as u64;

        let mut waiting = count;
        while waiting > 0 {
            if watchdog.guard(conn.lines.fill(&mut conn.stream)).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("server closed the connection with {waiting} replies due"),
                ));
            }
            // One clock read per received chunk: every reply in it arrived
            // at the same moment as far as this process can tell.
            let now = Instant::now();
            watchdog.progress(now);
            let nanos = u64::try_from((now - sent_at).as_nanos()).unwrap_or(u64::MAX);
            while waiting > 0 {
                let Some(line) = conn.lines.next_line() else {
                    break;
                };
                if !bench::framing::ends_reply(line) {
                    // A line of a longer reply, or a pushed one: the
                    // reply's last line is what `--expect` checks.
                    continue;
                }
                waiting -= 1;
                if plan.expect.matches(line) {
                    outcome.matched += 1;
                } else {
                    outcome.mismatched += 1;
                    if outcome.first_mismatch.is_none() {
                        outcome.first_mismatch = Some(String::from_utf8_lossy(line).into_owned());
                    }
                }
                latencies.record(nanos);
            }
        }
    }
    Ok(())
}
