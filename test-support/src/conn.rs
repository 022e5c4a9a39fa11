use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::WAIT;

/// A blocking loopback connection to the host, with every read bounded by [`WAIT`].
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects and reads the greeting line, returning it with the connection.
    pub fn open(addr: SocketAddr) -> (Conn, String) {
        let mut conn = Conn::connect(addr);
        let greeting = conn.line();
        (conn, greeting)
    }

    /// Connects from `local` (say 127.0.0.2, to stand for another
    /// machine) and reads the greeting line.
    pub fn open_from(local: std::net::IpAddr, addr: SocketAddr) -> (Conn, String) {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        socket
            .bind(&SocketAddr::new(local, 0).into())
            .unwrap_or_else(|e| panic!("bind the client to {local}: {e}"));
        socket
            .connect_timeout(&addr.into(), WAIT)
            .expect("connect to host");
        let mut conn = Conn::from_stream(socket.into());
        let greeting = conn.line();
        (conn, greeting)
    }

    /// Connects without reading anything.
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::from_stream(TcpStream::connect_timeout(&addr, WAIT).expect("connect to host"))
    }

    fn from_stream(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        stream.set_write_timeout(Some(WAIT)).expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone stream");
        Conn {
            reader: BufReader::new(stream),
            writer,
        }
    }

    /// Sends raw bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to host");
    }

    /// Sends one line, adding `\n`.
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Reads one line without its `\n`; panics on timeout or end of stream.
    pub fn line(&mut self) -> String {
        self.try_line()
            .expect("host closed the connection while a line was expected")
    }

    /// Reads one line, or `None` at end of stream. Panics on timeout.
    pub fn try_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut buf)
            .expect("reading a line from host");
        if n == 0 {
            return None;
        }
        assert_eq!(buf.pop(), Some(b'\n'), "line cut off: {buf:?}");
        Some(String::from_utf8(buf).expect("host sent invalid UTF-8"))
    }

    /// Sends `line` and returns its reply of several lines, each starting
    /// with `prefix` and a space, up to the line `<prefix> end` (left out),
    /// which ends the reply; every line before it must carry the `MSG | ` of
    /// a reply that goes on. Panics on another line, or past 10,000 lines.
    pub fn ask_lines(&mut self, line: &str, prefix: &str) -> Vec<String> {
        self.send(line);
        let end = format!("{prefix} end");
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let line = match line.strip_prefix(crate::CONTINUED) {
                Some(rest) => rest.to_owned(),
                None => {
                    assert_eq!(line, end, "a reply's last line, after {lines:?}");
                    return lines;
                }
            };
            assert!(
                line.starts_with(&format!("{prefix} ")),
                "{line:?} after {lines:?}"
            );
            if line == end {
                return lines;
            }
            lines.push(line);
            assert!(lines.len() < 10_000, "no {end:?}");
        }
    }

    /// Sends `request` (a quick call of hook `hook` of `plugin`, answered
    /// `reply`) in batches until `INFO` says that the hook runs inline: it
    /// earns that with 100 quick calls in a row, which a loaded machine can
    /// spoil. Panics after 20 batches.
    pub fn make_inline(&mut self, request: &str, reply: &str, plugin: &str, hook: usize) {
        let line = format!("INFO hook {plugin} {hook} ");
        for _ in 0..20 {
            let batch = 200;
            self.send_raw(format!("{request}\n").repeat(batch).as_bytes());
            for _ in 0..batch {
                assert_eq!(self.line(), reply);
            }
            let info = self.ask_lines("INFO", "INFO");
            let Some(entry) = info.iter().find(|l| l.starts_with(&line)) else {
                panic!("no {line:?} in {info:?}");
            };
            if entry.contains(" runs=inline ") {
                return;
            }
        }
        panic!("hook {hook} of {plugin} never ran inline");
    }

    /// Sends `line` and returns the one-line reply.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// True when the host has closed the connection: the next read finds
    /// the end of the stream (or a reset, if the client was still sending).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    /// The write half, for tests that need to shut it down or tune it.
    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }
}
