//! Fan-out: one publisher, many subscribers, and how many lines per second
//! reach them. The same run for the host's chat plugin (`JOIN`, `SAY`) and
//! for Redis (`SUBSCRIBE`, `PUBLISH`), so the two compare directly.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bench::conn::{self, Conn};
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Notify;

use crate::args::{FanoutArgs, FanoutProtocol};

/// Connection attempts in flight at once while setting up.
const CONNECT_CONCURRENCY: usize = 256;
/// Subscribers read little per message; a small buffer keeps this tool's
/// memory modest with thousands of them.
const SUBSCRIBER_BUFFER: usize = 4 * 1024;
/// The room, or channel.
const ROOM: &str = "fanout";
/// Longest wait for any one reply during setup or publishing.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// What is sent and what is counted, per protocol.
struct Protocol {
    /// What a subscriber sends, and the start of the reply that confirms it.
    subscribe: Vec<u8>,
    subscribed: &'static [u8],
    /// What the publisher sends before publishing, and the start of the
    /// reply that says it is done.
    join: Vec<u8>,
    joined: &'static [u8],
    /// One message, as the publisher sends it.
    publish: Vec<u8>,
    /// The line a subscriber receives for it (terminator stripped).
    delivery: Vec<u8>,
}

impl Protocol {
    fn new(kind: FanoutProtocol, payload: &str) -> Protocol {
        match kind {
            FanoutProtocol::Chat => Protocol {
                subscribe: format!("JOIN {ROOM}\n").into_bytes(),
                subscribed: b"MSG joined",
                join: format!("NICK pub\nJOIN {ROOM}\n").into_bytes(),
                joined: b"MSG joined",
                publish: format!("SAY {payload}\n").into_bytes(),
                delivery: format!("MSG > {ROOM} pub: {payload}").into_bytes(),
            },
            FanoutProtocol::Redis => Protocol {
                subscribe: format!("SUBSCRIBE {ROOM}\r\n").into_bytes(),
                // The last line of the confirmation: the subscription count.
                subscribed: b":",
                join: Vec::new(),
                joined: b"",
                publish: format!("PUBLISH {ROOM} {payload}\r\n").into_bytes(),
                // The last line of the three-part `message` array.
                delivery: payload.as_bytes().to_vec(),
            },
        }
    }
}

/// The figures of one run.
#[derive(Debug, Default, Serialize)]
pub struct FanoutReport {
    pub addr: String,
    pub protocol: String,
    pub subscribers: usize,
    /// Subscribers connected and subscribed.
    pub connected: usize,
    /// Subscribers whose connection ended during the run.
    pub lost_subscribers: usize,
    pub published: u64,
    /// Lines received by all subscribers together.
    pub delivered: u64,
    /// `published` times the subscribers still connected.
    pub expected: u64,
    /// From the first message published to the last one delivered.
    pub elapsed_s: f64,
    pub delivered_per_s: f64,
    pub published_per_s: f64,
    pub cpu_pid: Option<u32>,
    pub server_cpu_s: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
}

/// What the subscriber tasks and the publisher share.
#[derive(Default)]
struct Tally {
    delivered: AtomicU64,
    lost: AtomicU64,
    /// Told whenever deliveries were counted, for a publisher that waits
    /// for the subscribers to catch up.
    progress: Notify,
}

pub async fn run(args: &FanoutArgs) -> anyhow::Result<FanoutReport> {
    if args.subscribers == 0 || args.pipeline == 0 {
        bail!("--subscribers and --pipeline must be at least 1");
    }
    let addr = bench::target::resolve(&args.target.addr, args.target.allow_remote).await?;
    let greeting = args.target.greeting()?;
    let protocol = Arc::new(Protocol::new(args.protocol, &args.payload));
    let timeout = args.target.connect_timeout;

    let opened = conn::open_many(
        addr,
        args.subscribers,
        &greeting,
        timeout,
        CONNECT_CONCURRENCY,
        SUBSCRIBER_BUFFER,
    )
    .await;
    let mut subscribers = Vec::with_capacity(opened.len());
    for c in opened {
        let mut c = c.context("connecting a subscriber")?;
        // One at a time: with chat, each join is told to everyone already
        // in the room, and the replies must not be confused.
        request(&mut c, &protocol.subscribe, protocol.subscribed)
            .await
            .context("subscribing")?;
        subscribers.push(c);
    }
    let mut publisher = Conn::open(addr, &greeting, timeout)
        .await
        .context("connecting the publisher")?;
    if !protocol.join.is_empty() {
        request(&mut publisher, &protocol.join, protocol.joined)
            .await
            .context("joining the publisher")?;
    }

    let tally = Arc::new(Tally::default());
    let tasks: Vec<_> = subscribers
        .into_iter()
        .map(|c| tokio::spawn(subscribe(c, Arc::clone(&protocol), Arc::clone(&tally))))
        .collect();
    tokio::time::sleep(args.settle).await;

    let cpu_before = match args.cpu_pid {
        Some(pid) => Some(
            bench::cpu::tree_cpu_seconds(pid)
                .with_context(|| format!("cannot read /proc/{pid}/stat"))?,
        ),
        None => None,
    };
    let count = tasks.len() as u64;
    let started = Instant::now();
    let published = publish(&mut publisher, &protocol, args, &tally, count).await?;
    let publish_s = started.elapsed().as_secs_f64();
    let drain_until = Instant::now() + args.drain_timeout;
    let expected = || published * (count - tally.lost.load(Ordering::Relaxed));
    while tally.delivered.load(Ordering::Relaxed) < expected() && Instant::now() < drain_until {
        let _ = tokio::time::timeout(Duration::from_millis(1), tally.progress.notified()).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = args.cpu_pid.and_then(bench::cpu::tree_cpu_seconds);
    for task in &tasks {
        task.abort();
    }

    let delivered = tally.delivered.load(Ordering::Relaxed);
    let server_cpu_s = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    Ok(FanoutReport {
        addr: addr.to_string(),
        protocol: format!("{:?}", args.protocol).to_lowercase(),
        subscribers: args.subscribers,
        connected: tasks.len(),
        lost_subscribers: tally.lost.load(Ordering::Relaxed) as usize,
        published,
        delivered,
        expected: expected(),
        elapsed_s: elapsed,
        delivered_per_s: delivered as f64 / elapsed,
        published_per_s: published as f64 / publish_s,
        cpu_pid: args.cpu_pid,
        server_cpu_s,
        server_cpu_us_per_delivery: server_cpu_s
            .filter(|_| delivered > 0)
            .map(|cpu| cpu * 1e6 / delivered as f64),
    })
}

/// Sends `line` and reads until a line that ends a reply and starts with
/// `done` (lines pushed meanwhile, and other replies' lines, are skipped).
async fn request(c: &mut Conn, line: &[u8], done: &[u8]) -> anyhow::Result<()> {
    c.stream.write_all(line).await?;
    tokio::time::timeout(REPLY_TIMEOUT, async {
        loop {
            while let Some(got) = c.lines.next_line() {
                if bench::framing::ends_reply(got) && got.starts_with(done) {
                    return Ok(());
                }
            }
            if c.lines.fill(&mut c.stream).await? == 0 {
                bail!("the server closed the connection");
            }
        }
    })
    .await
    .context("no reply in time")?
}

/// A subscriber: counts the deliveries it receives until aborted.
async fn subscribe(mut c: Conn, protocol: Arc<Protocol>, tally: Arc<Tally>) {
    loop {
        match c.lines.fill(&mut c.stream).await {
            Ok(0) | Err(_) => {
                tally.lost.fetch_add(1, Ordering::Relaxed);
                tally.progress.notify_one();
                return;
            }
            Ok(_) => {}
        }
        let mut got = 0;
        while let Some(line) = c.lines.next_line() {
            if line == protocol.delivery.as_slice() {
                got += 1;
            }
        }
        if got > 0 {
            tally.delivered.fetch_add(got, Ordering::Relaxed);
            tally.progress.notify_one();
        }
    }
}

/// Publishes windows of messages until the run's time is up; returns how
/// many were published (each one answered).
async fn publish(
    c: &mut Conn,
    protocol: &Protocol,
    args: &FanoutArgs,
    tally: &Tally,
    subscribers: u64,
) -> anyhow::Result<u64> {
    let window = protocol.publish.repeat(args.pipeline);
    let deadline = Instant::now() + args.duration;
    let mut published = 0u64;
    while Instant::now() < deadline {
        // Stay within `max_lag` messages of the average subscriber.
        loop {
            let alive = subscribers - tally.lost.load(Ordering::Relaxed);
            let due = published * alive;
            let delivered = tally.delivered.load(Ordering::Relaxed);
            if due.saturating_sub(delivered) <= args.max_lag * alive || Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(1), tally.progress.notified()).await;
        }
        c.stream.write_all(&window).await?;
        let mut waiting = args.pipeline;
        while waiting > 0 {
            while waiting > 0
                && let Some(line) = c.lines.next_line()
            {
                if bench::framing::ends_reply(line) {
                    waiting -= 1;
                }
            }
            if waiting > 0
                && tokio::time::timeout(REPLY_TIMEOUT, c.lines.fill(&mut c.stream))
                    .await
                    .context("the publisher got no reply in time")??
                    == 0
            {
                bail!("the server closed the publisher's connection");
            }
        }
        published += args.pipeline as u64;
    }
    Ok(published)
}

impl FanoutReport {
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::to_string(self)?)?;
            return Ok(());
        }
        writeln!(out, "target        {} ({})", self.addr, self.protocol)?;
        writeln!(
            out,
            "subscribers   {} of {}, {} lost during the run",
            self.connected, self.subscribers, self.lost_subscribers
        )?;
        writeln!(
            out,
            "published     {} ({:.0}/s)",
            self.published, self.published_per_s
        )?;
        writeln!(
            out,
            "delivered     {} of {} in {:.2} s: {:.0} lines/s",
            self.delivered, self.expected, self.elapsed_s, self.delivered_per_s
        )?;
        if let (Some(pid), Some(cpu)) = (self.cpu_pid, self.server_cpu_s) {
            let per = self
                .server_cpu_us_per_delivery
                .map_or_else(|| "?".to_owned(), |us| format!("{us:.3}"));
            writeln!(
                out,
                "server cpu    {cpu:.2} s, {per} us per delivered line (pid {pid} and its descendants)"
            )?;
        }
        Ok(())
    }
}
