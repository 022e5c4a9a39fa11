//! One soak client: keeps a window of requests in flight and checks each
//! reply against the oldest request still waiting.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::conn::Conn;
use bench::greeting::{Greeting, Rejected};
use bench::watchdog::Watchdog;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Semaphore;

use crate::mix::{Expected, Kind, Requests, Rng, Verdict};
use crate::report::Tally;

/// Pause before reconnecting, so a host that refuses connections is not
/// hammered in a tight loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// What all clients share.
pub struct Plan {
    pub addr: SocketAddr,
    pub requests: Requests,
    pub greeting: Greeting,
    pub window: usize,
    /// When clients stop sending new work and drain.
    pub deadline: Instant,
    /// When clients stop waiting for replies altogether.
    pub drain_deadline: Instant,
    pub reply_timeout: Duration,
    pub connect_timeout: Duration,
    /// Limits connection attempts in flight, so thousands of clients
    /// starting at once do not overflow the host's listen backlog.
    pub connecting: Semaphore,
    pub seed: u64,
}

/// Runs client `id` until the plan's end and returns its counts.
pub async fn run(id: u64, plan: Arc<Plan>) -> Tally {
    let mut client = Client {
        rng: Rng::new(plan.seed ^ id.wrapping_mul(0x9E37_79B9)),
        out: Vec::with_capacity(4096),
        outstanding: VecDeque::with_capacity(plan.window + 1),
        tally: Tally::default(),
    };
    let limit = plan
        .drain_deadline
        .saturating_duration_since(Instant::now());
    if tokio::time::timeout(limit, client.sessions(&plan))
        .await
        .is_err()
    {
        client.tally.sample(|| "drain timed out".to_owned());
    }
    // Whatever is still waiting now never got its reply.
    client.tally.lost += client.outstanding.len() as u64;
    client.tally
}

struct Client {
    rng: Rng,
    /// Requests to write next, reused across writes.
    out: Vec<u8>,
    /// Replies due, oldest first.
    outstanding: VecDeque<Expected>,
    tally: Tally,
}

impl Client {
    /// Connects, runs a session, and reconnects after failures until the
    /// deadline, so one broken connection doesn't end the client's load.
    async fn sessions(&mut self, plan: &Plan) {
        loop {
            let opened = {
                let _permit = plan.connecting.acquire().await;
                Conn::open(plan.addr, &plan.greeting, plan.connect_timeout).await
            };
            match opened {
                Ok(mut conn) => match self.session(&mut conn, plan).await {
                    Ok(()) => return,
                    Err(e) => {
                        self.tally.lost += self.outstanding.len() as u64;
                        self.outstanding.clear();
                        self.out.clear();
                        self.tally.broken += 1;
                        self.tally.sample(|| format!("connection broke: {e}"));
                    }
                },
                Err(e) => {
                    if Rejected::line_of(&e).is_some() {
                        self.tally.rejected += 1;
                    } else {
                        self.tally.connect_errors += 1;
                    }
                    self.tally.sample(|| format!("connect: {e}"));
                }
            }
            if Instant::now() >= plan.deadline {
                return;
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }

    /// Sends and checks until the deadline, then sends one last request
    /// and waits for every reply still due.
    async fn session(&mut self, conn: &mut Conn, plan: &Plan) -> io::Result<()> {
        let mut watchdog = Watchdog::new(plan.reply_timeout);
        let mut last_sent = false;
        loop {
            if Instant::now() < plan.deadline {
                while self.outstanding.len() < plan.window {
                    let kind = plan.requests.mix.pick(&mut self.rng);
                    self.queue(plan, kind);
                }
            } else if !last_sent {
                // A final plain request: its reply proves that everything
                // before it was answered, not merely that the host went quiet.
                self.queue(plan, Kind::Hello);
                last_sent = true;
            }
            if !self.out.is_empty() {
                watchdog.progress(Instant::now());
                watchdog.guard(conn.stream.write_all(&self.out)).await?;
                self.out.clear();
            }
            if last_sent && self.outstanding.is_empty() {
                return Ok(());
            }
            if watchdog.guard(conn.lines.fill(&mut conn.stream)).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "host closed the connection with {} replies due",
                        self.outstanding.len()
                    ),
                ));
            }
            watchdog.progress(Instant::now());
            while let Some(line) = conn.lines.next_line() {
                let due = self.outstanding.pop_front();
                let verdict = match &due {
                    Some(expected) => plan.requests.check(expected, line),
                    None => Verdict::Unexpected,
                };
                self.tally.count(verdict, due.map(|e| e.kind), line);
            }
        }
    }

    fn queue(&mut self, plan: &Plan, kind: Kind) {
        let expected = plan.requests.write(kind, &mut self.rng, &mut self.out);
        self.outstanding.push_back(expected);
        self.tally.sent += 1;
    }
}
