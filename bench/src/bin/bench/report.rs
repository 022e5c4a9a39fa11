//! What a run found, printed as a table or as one JSON object.

use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::args::LoadArgs;

/// Counts of one connection's run.
#[derive(Default)]
pub struct ConnOutcome {
    pub sent: u64,
    pub matched: u64,
    pub mismatched: u64,
    pub first_mismatch: Option<String>,
    pub error: Option<io::Error>,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub addr: String,
    pub request: String,
    pub connections: usize,
    pub connected: usize,
    pub pipeline: usize,
    pub threads: usize,
    pub elapsed_s: f64,
    /// Requests written.
    pub requests: u64,
    /// Replies received, matching or not.
    pub replies: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// Replies that did not match `--expect`.
    pub mismatched: u64,
    /// Connections that could not be opened or were refused at greeting.
    pub connect_errors: u64,
    /// Connections that broke or stalled during the run.
    pub io_errors: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// The process given with `--cpu-pid`.
    pub cpu_pid: Option<u32>,
    /// CPU time it and its descendants spent during the run.
    pub server_cpu_s: Option<f64>,
    /// That per reply received.
    pub server_cpu_us_per_req: Option<f64>,
}

impl LoadReport {
    pub fn new(addr: SocketAddr, args: &LoadArgs) -> Self {
        LoadReport {
            addr: addr.to_string(),
            request: args.request.clone(),
            connections: args.connections,
            connected: 0,
            pipeline: args.pipeline,
            threads: args.target.threads,
            elapsed_s: 0.0,
            requests: 0,
            replies: 0,
            rps: 0.0,
            p50_us: 0.0,
            p99_us: 0.0,
            p999_us: 0.0,
            max_us: 0.0,
            mismatched: 0,
            connect_errors: 0,
            io_errors: 0,
            errors: 0,
            first_error: None,
            cpu_pid: args.cpu_pid,
            server_cpu_s: None,
            server_cpu_us_per_req: None,
        }
    }

    pub fn connect_failed(&mut self, e: &io::Error) {
        self.connect_errors += 1;
        self.note_error(|| format!("connect: {e}"));
    }

    pub fn add(&mut self, outcome: ConnOutcome) {
        self.connected += 1;
        self.requests += outcome.sent;
        self.replies += outcome.matched + outcome.mismatched;
        self.mismatched += outcome.mismatched;
        if let Some(line) = outcome.first_mismatch {
            self.note_error(|| format!("unexpected reply {line:?}"));
        }
        if let Some(e) = outcome.error {
            self.io_errors += 1;
            self.note_error(|| format!("connection: {e}"));
        }
    }

    fn note_error(&mut self, describe: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(describe());
        }
    }

    pub fn finish(&mut self, elapsed: Duration, latencies: &Histogram<u64>) {
        self.elapsed_s = elapsed.as_secs_f64();
        if self.elapsed_s > 0.0 {
            self.rps = self.replies as f64 / self.elapsed_s;
        }
        let us = |nanos: u64| nanos as f64 / 1000.0;
        if !latencies.is_empty() {
            self.p50_us = us(latencies.value_at_quantile(0.50));
            self.p99_us = us(latencies.value_at_quantile(0.99));
            self.p999_us = us(latencies.value_at_quantile(0.999));
            self.max_us = us(latencies.max());
        }
        self.errors = self.mismatched + self.connect_errors + self.io_errors;
    }

    /// Records the server's CPU time over the run; call after `finish`.
    pub fn server_cpu(&mut self, seconds: f64) {
        self.server_cpu_s = Some(seconds);
        if self.replies > 0 {
            self.server_cpu_us_per_req = Some(seconds * 1e6 / self.replies as f64);
        }
    }

    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        // Written, not `println!`ed: a closed pipe (`bench ... | head`)
        // is an error to return, not a panic.
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(self)?)?;
            return Ok(());
        }
        writeln!(
            out,
            "target        {}  request {:?}",
            self.addr, self.request
        )?;
        writeln!(
            out,
            "connections   {} open of {}, pipeline {}, {} thread(s)",
            self.connected, self.connections, self.pipeline, self.threads
        )?;
        writeln!(
            out,
            "requests      {} sent, {} replies in {:.2} s",
            self.requests, self.replies, self.elapsed_s
        )?;
        writeln!(out, "throughput    {:.0} requests/s", self.rps)?;
        writeln!(
            out,
            "latency (us)  p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
            self.p50_us, self.p99_us, self.p999_us, self.max_us
        )?;
        writeln!(
            out,
            "errors        {} (mismatched replies {}, connect {}, connection {})",
            self.errors, self.mismatched, self.connect_errors, self.io_errors
        )?;
        if let (Some(pid), Some(cpu)) = (self.cpu_pid, self.server_cpu_s) {
            let per = self
                .server_cpu_us_per_req
                .map_or_else(|| "?".to_owned(), |us| format!("{us:.2}"));
            writeln!(
                out,
                "server cpu    {cpu:.2} s, {per} us per request (pid {pid} and its descendants)"
            )?;
        }
        if let Some(e) = &self.first_error {
            writeln!(out, "first error   {e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Serialize)]
pub struct IdleReport {
    pub addr: String,
    pub connections: usize,
    pub opened: usize,
    pub failed: usize,
    /// Opened connections the server had closed (or written to) by the end
    /// of the hold.
    pub closed_by_server: usize,
    pub open_s: f64,
    pub rss_pid: Option<u32>,
    /// Resident set sizes summed over `rss_pid` and its descendants, which
    /// count a page shared by several of them once in each.
    pub rss_before_kib: Option<u64>,
    pub rss_kib: Option<u64>,
    /// Growth of the server's RSS per opened connection.
    pub bytes_per_conn: Option<f64>,
    /// Proportional set sizes summed over the same processes, read at the
    /// same moments: a page shared by k processes counts 1/k in each, so
    /// this is what the tree costs the machine. `None` where
    /// `/proc/<pid>/smaps_rollup` cannot be read.
    pub pss_before_kib: Option<u64>,
    pub pss_kib: Option<u64>,
    /// Growth of the server's PSS per opened connection.
    pub pss_bytes_per_conn: Option<f64>,
    pub first_error: Option<String>,
}

impl IdleReport {
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        // Written, not `println!`ed: a closed pipe (`bench ... | head`)
        // is an error to return, not a panic.
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(self)?)?;
            return Ok(());
        }
        writeln!(out, "target        {}", self.addr)?;
        writeln!(
            out,
            "connections   {} opened of {} in {:.2} s, {} failed, {} closed by server",
            self.opened, self.connections, self.open_s, self.failed, self.closed_by_server
        )?;
        if let (Some(pid), Some(rss)) = (self.rss_pid, self.rss_kib) {
            let before = self
                .rss_before_kib
                .map_or_else(|| "?".to_owned(), |k| k.to_string());
            writeln!(
                out,
                "server rss    {rss} KiB with connections open (pid {pid} and its descendants, {before} KiB before)"
            )?;
        }
        if let (Some(pid), Some(pss)) = (self.rss_pid, self.pss_kib) {
            let before = self
                .pss_before_kib
                .map_or_else(|| "?".to_owned(), |k| k.to_string());
            writeln!(
                out,
                "server pss    {pss} KiB with connections open (pid {pid} and its descendants, {before} KiB before)"
            )?;
        }
        if let Some(b) = self.bytes_per_conn {
            let pss = self
                .pss_bytes_per_conn
                .map_or_else(String::new, |p| format!(" of RSS, {p:.0} bytes of PSS"));
            writeln!(out, "per conn      {b:.0} bytes{pss}")?;
        }
        if let Some(e) = &self.first_error {
            writeln!(out, "first error   {e}")?;
        }
        Ok(())
    }
}
