//! Counts of a soak run, per client and in total.

use serde::Serialize;
use std::io::Write as _;

use crate::mix::{Kind, Verdict};

/// Examples of failures kept per client, to show what went wrong without
/// flooding the output.
const SAMPLES: usize = 3;

/// One client's counts; summed into the run's.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub sent: u64,
    /// Valid requests answered as they should be.
    pub ok: u64,
    pub too_long: u64,
    pub bad_utf8: u64,
    pub plugin_failed: u64,
    /// Replies that were not what their request must get, or replies with
    /// no request waiting.
    pub unexpected: u64,
    /// Requests sent that never got a reply.
    pub lost: u64,
    /// Connections that could not be opened.
    pub connect_errors: u64,
    /// Connections greeted with something else than the greeting pattern
    /// (a full host says `ERR server busy`).
    pub rejected: u64,
    /// Connections that broke or stalled after opening.
    pub broken: u64,
    #[serde(skip)]
    pub samples: Vec<String>,
}

impl Tally {
    /// Counts one reply; `request` is what it answered, if anything was due.
    pub fn count(&mut self, verdict: Verdict, request: Option<Kind>, line: &[u8]) {
        match verdict {
            Verdict::Ok => self.ok += 1,
            Verdict::TooLong => self.too_long += 1,
            Verdict::BadUtf8 => self.bad_utf8 += 1,
            Verdict::PluginFailed => self.plugin_failed += 1,
            Verdict::Unexpected => {
                self.unexpected += 1;
                self.sample(|| {
                    let shown = &line[..line.len().min(120)];
                    let to = request.map_or("no request", Kind::describe);
                    format!(
                        "unexpected reply to {to}: {:?}",
                        String::from_utf8_lossy(shown)
                    )
                });
            }
        }
    }

    pub fn sample(&mut self, describe: impl FnOnce() -> String) {
        if self.samples.len() < SAMPLES {
            self.samples.push(describe());
        }
    }

    pub fn add(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.too_long += other.too_long;
        self.bad_utf8 += other.bad_utf8;
        self.plugin_failed += other.plugin_failed;
        self.unexpected += other.unexpected;
        self.lost += other.lost;
        self.connect_errors += other.connect_errors;
        self.rejected += other.rejected;
        self.broken += other.broken;
        for s in other.samples {
            if self.samples.len() < 10 {
                self.samples.push(s);
            }
        }
    }

    pub fn replies(&self) -> u64 {
        self.ok + self.too_long + self.bad_utf8 + self.plugin_failed + self.unexpected
    }
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub addr: String,
    pub clients: usize,
    pub elapsed_s: f64,
    #[serde(flatten)]
    pub tally: Tally,
    pub replies: u64,
    pub rps: f64,
    pub host_pid: Option<u32>,
    /// The host's VmHWM at the end, summed over its process tree: its peak
    /// resident memory (an upper bound when it has child processes).
    pub host_peak_rss_kib: Option<u64>,
    /// The host's largest VmRSS seen while polling, summed over its tree.
    pub host_max_rss_kib: Option<u64>,
    pub samples: Vec<String>,
    pub passed: bool,
}

impl SoakReport {
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        // Written, not `println!`ed: a closed pipe (`bench ... | head`)
        // is an error to return, not a panic.
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(self)?)?;
            return Ok(());
        }
        let t = &self.tally;
        writeln!(
            out,
            "target            {}  clients {}",
            self.addr, self.clients
        )?;
        writeln!(
            out,
            "requests          {} sent, {} replies in {:.1} s ({:.0}/s)",
            t.sent, self.replies, self.elapsed_s, self.rps
        )?;
        writeln!(
            out,
            "replies           ok {}, line too long {}, invalid UTF-8 {}, plugin failed {}, unexpected {}",
            t.ok, t.too_long, t.bad_utf8, t.plugin_failed, t.unexpected
        )?;
        writeln!(out, "lost              {}", t.lost)?;
        writeln!(
            out,
            "connections       {} connect errors, {} rejected at greeting, {} broken",
            t.connect_errors, t.rejected, t.broken
        )?;
        if let Some(pid) = self.host_pid {
            let kib = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |k| format!("{k} KiB"));
            writeln!(
                out,
                "host memory       peak {} (VmHWM), largest RSS seen {} (pid {pid} and its descendants)",
                kib(self.host_peak_rss_kib),
                kib(self.host_max_rss_kib)
            )?;
        }
        for s in &self.samples {
            writeln!(out, "example           {s}")?;
        }
        writeln!(
            out,
            "result            {}",
            if self.passed { "PASS" } else { "FAIL" }
        )?;
        Ok(())
    }
}
