//! Helpers shared by the integration tests of `host`, `client` and `bench`.
//!
//! Tests run against the real binaries and the real plugin libraries. Cargo
//! does not build a package's `cdylib` just because another package's test
//! needs it, so [`build_workspace`] runs `cargo build --workspace` once per
//! test process, with the same profile, target and target directory as the
//! test binary itself, and the tests then find every artifact there.

mod build;
mod conn;
mod framed;
mod host;
pub mod root;
pub mod tls;
mod wait;

pub use build::{
    artifact_dir, bin_path, build_outside, build_test_plugin, build_workspace, plugin_entry,
    plugin_path, workspace_dir,
};
pub use conn::Conn;
pub use framed::{CONTINUED, Framed, PUSHED};
pub use host::{HostOutput, HostProcess, HostStart, copy_dirs, serving_pid_of};
pub use wait::{wait_bounded, wait_or_kill, wait_until};

/// How long any single wait in a test may last before the test fails.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(20);
