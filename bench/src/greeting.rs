//! The lines a server sends on connect, before any request.

use std::io;
use std::time::Duration;

use tokio::io::AsyncRead;

use crate::lines::LineBuf;
use crate::pattern::Pattern;
use crate::tls::TlsClient;

/// What to expect before the first reply: `lines` lines, the first of which
/// must match `pattern` if one is given.
///
/// The host greets every connection and Redis greets none, so a load tool
/// for both must be told; the pattern also makes a full server's
/// `ERR server busy` count as a failed connection rather than a reply.
#[derive(Debug, Clone, Default)]
pub struct Greeting {
    pub lines: usize,
    pub pattern: Option<Pattern>,
    /// The TLS handshake that comes first, if the server speaks TLS.
    pub tls: Option<TlsClient>,
}

impl Greeting {
    /// Consumes the greeting from `reader`, bounded by `timeout` in all.
    pub async fn read<R: AsyncRead + Unpin>(
        &self,
        reader: &mut R,
        lines: &mut LineBuf,
        timeout: Duration,
    ) -> io::Result<()> {
        if self.lines == 0 {
            return Ok(());
        }
        tokio::time::timeout(timeout, self.read_unbounded(reader, lines))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no greeting from server"))?
    }

    async fn read_unbounded<R: AsyncRead + Unpin>(
        &self,
        reader: &mut R,
        lines: &mut LineBuf,
    ) -> io::Result<()> {
        let mut seen = 0;
        while seen < self.lines {
            while seen < self.lines {
                let Some(line) = lines.next_line() else { break };
                if seen == 0
                    && let Some(pattern) = &self.pattern
                    && !pattern.matches(line)
                {
                    return Err(io::Error::other(Rejected(
                        String::from_utf8_lossy(line).into_owned(),
                    )));
                }
                seen += 1;
            }
            if seen < self.lines && lines.fill(reader).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection before greeting",
                ));
            }
        }
        Ok(())
    }
}

/// The server greeted with a line that does not match, such as a full
/// server's `ERR server busy`; carried inside the `io::Error`.
#[derive(Debug)]
pub struct Rejected(pub String);

impl Rejected {
    /// The rejecting line, if `e` is a rejected greeting.
    pub fn line_of(e: &io::Error) -> Option<&str> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Rejected>())
            .map(|r| r.0.as_str())
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unexpected greeting {:?}", self.0)
    }
}

impl std::error::Error for Rejected {}
