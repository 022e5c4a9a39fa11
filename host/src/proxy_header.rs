//! The PROXY protocol header (v1 text, v2 binary) that load balancers such
//! as HAProxy and nginx send before the client's own bytes, so that the
//! host learns the client's address rather than the balancer's.
//!
//! [`parse`] decides on the bytes received so far; [`read`] takes the header
//! off a socket without ever consuming a byte past it, so the client's first
//! request line, often in the same packet, stays for the connection.
//! Parsing the header fields is left to the `ppp` crate; what is framed
//! here is where a header ends, so that a header split over several reads
//! gets the same answer as one read at once.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ppp::v1;
use ppp::v2;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Which header versions are accepted (`proxy_protocol` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    V2,
    Any,
}

impl Mode {
    /// The config value for each mode.
    pub const NAMES: [(&str, Mode); 3] = [("v1", Mode::V1), ("v2", Mode::V2), ("any", Mode::Any)];

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, mode)| *mode)
    }
}

/// Longest v1 header, `\r\n` included, as the specification bounds it.
pub const V1_MAX: usize = 107;
/// Longest v2 header: 16 fixed bytes and a 16-bit length.
pub const V2_MAX: usize = 16 + u16::MAX as usize;
/// How long a connection may take to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = v2::PROTOCOL_PREFIX;
/// The v2 fixed part: signature, version and command, family, length.
const V2_FIXED: usize = 16;
/// Bytes looked at per read while the header is incomplete: a v1 header
/// or a typical v2 one with a few TLVs fits.
const PEEK_CHUNK: usize = 512;

/// What the bytes received so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header of `length` bytes. `source` is the client's address,
    /// or `None` when the header carries none the host can use (v1
    /// `UNKNOWN`, v2 `LOCAL` as in a balancer's health check, a v2
    /// unspecified or Unix address): the connection's own peer stands.
    Header {
        length: usize,
        source: Option<SocketAddr>,
    },
    /// A header may still come with more bytes.
    Incomplete,
    /// No valid header can start with these bytes.
    Invalid(Invalid),
}

/// Why a connection's first bytes are not a header it may send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("no PROXY protocol header ({expected} expected)")]
    Missing { expected: &'static str },
    #[error("PROXY v1 header longer than {V1_MAX} bytes")]
    V1TooLong,
    #[error("bad PROXY v1 header: {0}")]
    V1(String),
    #[error("bad PROXY v2 header: {0}")]
    V2(String),
}

/// Why [`read`] found no header.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no complete PROXY protocol header within {0:?}")]
    TimedOut(Duration),
    #[error("closed before a complete PROXY protocol header")]
    Closed,
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// Decides on `bytes`, the first bytes of a connection, under `mode`.
///
/// The answer for any prefix of a header is [`Parsed::Incomplete`], never
/// an error, and bytes past the header do not change it.
pub fn parse(mode: Mode, bytes: &[u8]) -> Parsed {
    let v1 = mode != Mode::V2 && starts_like(bytes, V1_PREFIX);
    let v2 = mode != Mode::V1 && starts_like(bytes, V2_SIGNATURE);
    match (v1, v2) {
        // Only the empty input starts like both.
        (true, true) => Parsed::Incomplete,
        (true, false) => parse_v1(bytes),
        (false, true) => parse_v2(bytes),
        (false, false) => Parsed::Invalid(Invalid::Missing {
            expected: match mode {
                Mode::V1 => "v1",
                Mode::V2 => "v2",
                Mode::Any => "v1 or v2",
            },
        }),
    }
}

/// True if `bytes` and `prefix` agree as far as both go.
fn starts_like(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = bytes.len().min(prefix.len());
    bytes[..n] == prefix[..n]
}

/// A v1 header is one line: it is parsed only once its `\n` is here, since
/// `ppp` refuses some prefixes of a valid line (one ending in a space
/// before the last port) rather than asking for more.
fn parse_v1(bytes: &[u8]) -> Parsed {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(end) = memchr::memchr(b'\n', window) else {
        return if bytes.len() >= V1_MAX {
            Parsed::Invalid(Invalid::V1TooLong)
        } else {
            Parsed::Incomplete
        };
    };
    let line = &window[..=end];
    match v1::Header::try_from(line) {
        // `ppp` takes the header up to its first `\r\n`: the line's end,
        // since the line ends at its first `\n`.
        Ok(header) => Parsed::Header {
            length: header.header.len(),
            source: match header.addresses {
                v1::Addresses::Tcp4(a) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                v1::Addresses::Tcp6(a) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                v1::Addresses::Unknown => None,
            },
        },
        Err(e) => Parsed::Invalid(Invalid::V1(e.to_string())),
    }
}

fn parse_v2(bytes: &[u8]) -> Parsed {
    match v2::Header::try_from(bytes) {
        Ok(header) => Parsed::Header {
            length: header.len(),
            source: match (header.command, header.addresses) {
                (v2::Command::Local, _) => None,
                (_, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
                }
                (_, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
                }
                (_, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
            },
        },
        Err(v2::ParseError::Incomplete(_) | v2::ParseError::Partial(..)) => Parsed::Incomplete,
        Err(e) => Parsed::Invalid(Invalid::V2(e.to_string())),
    }
}

/// Takes the header off `stream` within `timeout`: the client's address
/// if the header names one. Only the header's own bytes are consumed.
pub async fn read(
    stream: &mut TcpStream,
    mode: Mode,
    timeout: Duration,
) -> Result<Option<SocketAddr>, HeaderError> {
    tokio::time::timeout(timeout, take(stream, mode))
        .await
        .map_err(|_| HeaderError::TimedOut(timeout))?
}

/// Peeks at what has arrived and consumes it only while all of it is still
/// header; so each round either consumes bytes or waits for new ones.
async fn take(stream: &mut TcpStream, mode: Mode) -> Result<Option<SocketAddr>, HeaderError> {
    let mut buf = Vec::new();
    loop {
        let have = buf.len();
        let limit = if have >= V2_FIXED && starts_like(&buf, V2_SIGNATURE) {
            V2_MAX
        } else {
            V1_MAX.max(V2_FIXED)
        };
        let want = limit.saturating_sub(have).clamp(1, PEEK_CHUNK);
        buf.resize(have + want, 0);
        let n = stream.peek(&mut buf[have..]).await?;
        if n == 0 {
            return Err(HeaderError::Closed);
        }
        buf.truncate(have + n);
        match parse(mode, &buf) {
            Parsed::Header { length, source } => {
                // The rest of the header is already here: it was peeked.
                let mut rest = vec![0; length.saturating_sub(have)];
                stream.read_exact(&mut rest).await?;
                return Ok(source);
            }
            Parsed::Incomplete => {
                stream.read_exact(&mut buf[have..]).await?;
            }
            Parsed::Invalid(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_LINE: &[u8] = b"PROXY TCP4 127.0.0.5 127.0.0.1 40000 1991\r\n";

    fn v2_header(tlvs: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x21); // version 2, PROXY
        h.push(0x11); // IPv4, stream
        h.extend_from_slice(&u16::try_from(12 + tlvs.len()).unwrap().to_be_bytes());
        h.extend_from_slice(&[127, 0, 0, 5, 127, 0, 0, 1]);
        h.extend_from_slice(&40000u16.to_be_bytes());
        h.extend_from_slice(&1991u16.to_be_bytes());
        h.extend_from_slice(tlvs);
        h
    }

    fn client() -> Option<SocketAddr> {
        Some("127.0.0.5:40000".parse().unwrap())
    }

    #[test]
    fn a_header_gives_the_client_and_leaves_what_follows() {
        // v2 with an ALPN and an authority TLV, as HAProxy may send.
        let tlvs = [0x01, 0, 2, b'h', b'2', 0x02, 0, 3, b'a', b'.', b'b'];
        for (mode, header) in [(Mode::V1, V1_LINE.to_vec()), (Mode::V2, v2_header(&tlvs))] {
            let mut input = header.clone();
            input.extend_from_slice(b"HELLO\r\n");
            let expected = Parsed::Header {
                length: header.len(),
                source: client(),
            };
            assert_eq!(parse(mode, &input), expected, "{mode:?}");
            assert_eq!(parse(Mode::Any, &input), expected, "{mode:?} as any");
        }
    }

    #[test]
    fn every_prefix_of_a_header_is_incomplete() {
        let tlvs = [0x04, 0, 1, 0];
        for (mode, header) in [
            (Mode::V1, V1_LINE.to_vec()),
            (Mode::V2, v2_header(&tlvs)),
            (Mode::Any, V1_LINE.to_vec()),
            (Mode::Any, v2_header(&[])),
        ] {
            for cut in 0..header.len() {
                assert_eq!(
                    parse(mode, &header[..cut]),
                    Parsed::Incomplete,
                    "{mode:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn the_other_version_and_plain_lines_are_refused() {
        assert!(matches!(parse(Mode::V2, V1_LINE), Parsed::Invalid(_)));
        assert!(matches!(
            parse(Mode::V1, &v2_header(&[])),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse(Mode::Any, b"HELLO\n"), Parsed::Invalid(_)));
        // Refused at the first byte that cannot be a header, not later.
        assert!(matches!(parse(Mode::Any, b"H"), Parsed::Invalid(_)));
        assert!(matches!(
            parse(Mode::V1, b"PROXY TCP4 x 127.0.0.1 1 2\r\n"),
            Parsed::Invalid(Invalid::V1(_))
        ));
    }

    #[test]
    fn a_v1_line_is_bounded() {
        let mut long = b"PROXY TCP6 ".to_vec();
        long.resize(V1_MAX, b'1');
        assert_eq!(parse(Mode::V1, &long), Parsed::Invalid(Invalid::V1TooLong));
        assert_eq!(parse(Mode::V1, &long[..V1_MAX - 1]), Parsed::Incomplete);
    }

    #[test]
    fn local_and_unknown_keep_the_connection_address() {
        assert_eq!(
            parse(Mode::V1, b"PROXY UNKNOWN\r\n"),
            Parsed::Header {
                length: 15,
                source: None
            }
        );
        // LOCAL: the balancer's own connection (a health check), whatever
        // addresses it carries.
        let mut local = v2_header(&[]);
        local[12] = 0x20;
        assert_eq!(
            parse(Mode::V2, &local),
            Parsed::Header {
                length: 28,
                source: None
            }
        );
    }
}
