//! The channel between the supervisor and its serving process, over which a
//! reload travels: the config as the supervisor read and checked it, and
//! the private copy of each plugin library as an open file (`SCM_RIGHTS`),
//! one way; the outcome, the other.
//!
//! A stream socket pair made for each serving process. A message is a
//! header (payload length and descriptor count, 4 bytes each, little
//! endian), then each descriptor alone on a one-byte message (so no read
//! ever takes bytes that carry a descriptor meant for a later read), then
//! the payload.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Largest payload either side accepts: a config is at most 1 MiB.
const MAX_PAYLOAD: u32 = 8 << 20;
/// Most plugins one reload may list.
pub const MAX_PLUGINS: usize = 4096;

/// One plugin of a reload: its config entry, the user's file, and which
/// copy it is (the supervisor's descriptor number, the same for as long as
/// the host runs: a serving process keeps an instance loaded from a copy
/// it already has).
#[derive(Debug)]
pub struct OrderedPlugin {
    pub index: usize,
    pub copy_id: u64,
    pub file: PathBuf,
    pub copy: OwnedFd,
}

/// What the supervisor sends for a reload.
#[derive(Debug)]
pub struct Order {
    pub config_text: String,
    pub plugins: Vec<OrderedPlugin>,
}

/// Sends `order`, its descriptors taken from `fds` (one per plugin, in order).
pub fn send_order(
    stream: &mut UnixStream,
    config_text: &str,
    plugins: &[(usize, u64, PathBuf, RawFd)],
) -> io::Result<()> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(plugins.len() as u32).to_le_bytes());
    for (index, copy_id, file, _) in plugins {
        payload.extend_from_slice(&(*index as u64).to_le_bytes());
        payload.extend_from_slice(&copy_id.to_le_bytes());
        let name = file.as_os_str().as_bytes();
        payload.extend_from_slice(&(name.len() as u32).to_le_bytes());
        payload.extend_from_slice(name);
    }
    payload.extend_from_slice(config_text.as_bytes());
    write_header(stream, payload.len(), plugins.len())?;
    for (_, _, _, fd) in plugins {
        let fds = [*fd];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let sent = sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(b"f")],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        if sent != 1 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    stream.write_all(&payload)
}

/// Receives an order; `None` when the supervisor closed the channel.
pub fn recv_order(stream: &mut UnixStream) -> io::Result<Option<Order>> {
    let Some((len, count)) = read_header(stream)? else {
        return Ok(None);
    };
    if count > MAX_PLUGINS {
        return Err(invalid("too many plugins"));
    }
    let mut fds = Vec::with_capacity(count);
    for _ in 0..count {
        fds.push(recv_fd(stream)?);
    }
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    let mut rest = payload.as_slice();
    let n = take_u32(&mut rest)? as usize;
    if n != count {
        return Err(invalid("plugin count and descriptors disagree"));
    }
    let mut plugins = Vec::with_capacity(n);
    for copy in fds {
        let index = take_u64(&mut rest)? as usize;
        let copy_id = take_u64(&mut rest)?;
        let name_len = take_u32(&mut rest)? as usize;
        let name = take(&mut rest, name_len)?;
        plugins.push(OrderedPlugin {
            index,
            copy_id,
            file: PathBuf::from(std::ffi::OsStr::from_bytes(name)),
            copy,
        });
    }
    let config_text = String::from_utf8(rest.to_vec()).map_err(|_| invalid("config not UTF-8"))?;
    Ok(Some(Order {
        config_text,
        plugins,
    }))
}

/// Sends the outcome of a reload: `Ok` with notes (warnings), or the error.
pub fn send_outcome(stream: &mut UnixStream, outcome: &Result<String, String>) -> io::Result<()> {
    let (tag, text) = match outcome {
        Ok(notes) => (b'+', notes),
        Err(e) => (b'-', e),
    };
    let mut payload = vec![tag];
    payload.extend_from_slice(text.as_bytes());
    write_header(stream, payload.len(), 0)?;
    stream.write_all(&payload)
}

/// Receives the outcome of a reload; an error if the channel broke first
/// (the serving process died while reloading, say).
pub fn recv_outcome(stream: &mut UnixStream) -> io::Result<Result<String, String>> {
    let Some((len, _)) = read_header(stream)? else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload)?;
    let text = String::from_utf8_lossy(payload.get(1..).unwrap_or_default()).into_owned();
    match payload.first() {
        Some(b'+') => Ok(Ok(text)),
        Some(b'-') => Ok(Err(text)),
        _ => Err(invalid("bad outcome")),
    }
}

fn write_header(stream: &mut UnixStream, len: usize, count: usize) -> io::Result<()> {
    let len = u32::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_PAYLOAD)
        .ok_or_else(|| invalid("message too large"))?;
    let mut header = [0u8; 8];
    header[..4].copy_from_slice(&len.to_le_bytes());
    header[4..].copy_from_slice(&(count as u32).to_le_bytes());
    stream.write_all(&header)
}

fn read_header(stream: &mut UnixStream) -> io::Result<Option<(usize, usize)>> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match stream.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let count = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_PAYLOAD {
        return Err(invalid("message too large"));
    }
    Ok(Some((len as usize, count as usize)))
}

/// Receives the one-byte message that carries one descriptor.
fn recv_fd(stream: &mut UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: the kernel just installed this descriptor in this
                // process for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    if msg.bytes != 1 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    fd.ok_or_else(|| invalid("a descriptor was expected"))
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
    if rest.len() < n {
        return Err(invalid("truncated message"));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_u32(rest: &mut &[u8]) -> io::Result<u32> {
    let b = take(rest, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_u64(rest: &mut &[u8]) -> io::Result<u64> {
    let b = take(rest, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_and_its_descriptors_arrive_whole() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let plugins = [
            (2, 7, PathBuf::from("/x/liba.so"), file.as_raw_fd()),
            (0, 9, PathBuf::from("/y/libb.so"), file.as_raw_fd()),
        ];
        send_order(&mut a, "listen = \"127.0.0.1:0\"\n", &plugins).unwrap();
        let order = recv_order(&mut b).unwrap().unwrap();
        assert_eq!(order.config_text, "listen = \"127.0.0.1:0\"\n");
        assert_eq!(order.plugins.len(), 2);
        assert_eq!(order.plugins[1].index, 0);
        assert_eq!(order.plugins[1].copy_id, 9);
        assert_eq!(order.plugins[0].file, PathBuf::from("/x/liba.so"));
        assert_ne!(order.plugins[0].copy.as_raw_fd(), file.as_raw_fd());
        send_outcome(&mut b, &Err("no".into())).unwrap();
        assert_eq!(recv_outcome(&mut a).unwrap(), Err("no".into()));
        drop(b);
        assert!(recv_outcome(&mut a).is_err());
    }
}
