//! What a process serving or driving many sockets sets up before its first
//! socket: shared by the host and the `bench` tools, so both size their
//! runtime and their file limit the same way.

mod files;
mod runtime;

pub use files::raise_open_files_limit;
pub use runtime::{RuntimeError, build_runtime, check_threads, cores};
