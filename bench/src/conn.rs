//! Opening connections: one, or thousands at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::greeting::Greeting;
use crate::lines::LineBuf;
use crate::tls::Stream;

/// A connected socket with its receive buffer, greeting consumed.
pub struct Conn {
    pub stream: Stream,
    pub lines: LineBuf,
}

/// Receive buffer per connection; replies are short, so this holds many.
const BUF_CAPACITY: usize = 16 * 1024;
/// Longest reply line accepted before the connection counts as broken.
const MAX_REPLY: usize = 1024 * 1024;

impl Conn {
    /// Connects and reads the greeting, all within `timeout`.
    pub async fn open(
        addr: SocketAddr,
        greeting: &Greeting,
        timeout: Duration,
    ) -> io::Result<Conn> {
        Conn::open_with_buffer(addr, greeting, timeout, BUF_CAPACITY).await
    }

    /// Like [`Conn::open`] with a chosen initial receive buffer size, for
    /// callers holding many connections that will read little.
    pub async fn open_with_buffer(
        addr: SocketAddr,
        greeting: &Greeting,
        timeout: Duration,
        capacity: usize,
    ) -> io::Result<Conn> {
        let tcp = crate::target::connect(addr, timeout).await?;
        let mut stream = match &greeting.tls {
            None => Stream::Plain(tcp),
            Some(tls) => tls.connect(tcp, timeout).await?,
        };
        let mut lines = LineBuf::new(capacity, MAX_REPLY);
        greeting.read(&mut stream, &mut lines, timeout).await?;
        Ok(Conn { stream, lines })
    }
}

/// Opens `count` connections with at most `concurrency` attempts in flight.
///
/// Results come back in no particular order; failures are kept so callers
/// can count and report them.
pub async fn open_many(
    addr: SocketAddr,
    count: usize,
    greeting: &Greeting,
    timeout: Duration,
    concurrency: usize,
    capacity: usize,
) -> Vec<io::Result<Conn>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let permits = Arc::clone(&permits);
        let greeting = greeting.clone();
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|_| io::Error::other("connection limiter closed"))?;
            Conn::open_with_buffer(addr, &greeting, timeout, capacity).await
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.unwrap_or_else(|e| Err(io::Error::other(e))));
    }
    out
}
