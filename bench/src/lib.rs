//! Pieces shared by the `bench` load generator and the `soak` tester.
//!
//! Both talk to any server speaking newline-terminated request/reply lines,
//! so nothing here knows the host's commands; the binaries decide what to
//! send and what a good reply looks like.

pub mod conn;
pub mod duration;
pub mod fdlimit;
pub mod greeting;
pub mod lines;
pub mod pattern;
pub mod procfs;
pub mod runtime;
pub mod target;
pub mod watchdog;
