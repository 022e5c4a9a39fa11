//! Pieces shared by the `bench` load generator and the `soak` tester.
//!
//! Both talk to any server speaking newline-terminated request/reply lines,
//! so nothing here knows the host's commands; the binaries decide what to
//! send and what a good reply looks like.

pub mod conn;
pub mod cpu;
pub mod duration;
pub mod framing;
pub mod greeting;
pub mod lines;
pub mod pattern;
pub mod rss;
pub mod target;
pub mod tls;
pub mod tree;
pub mod watchdog;

/// Whether `error` comes from writing to a pipe whose reader has gone,
/// which for a report on stdout means the user stopped reading, not a fault.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
