//! The client's exit codes, and the typed failures that lead to them.
//!
//! Scripts branch on these codes, so each failure a caller may want to react
//! to differently has its own code, and the table below is printed by
//! `--help` so it cannot drift from the code.

use std::process::ExitCode;

/// How a run of the client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything went well.
    Ok = 0,
    /// Any other failure: bad local I/O, internal error.
    Other = 1,
    // 2: the command line could not be parsed; clap exits with it itself.
    /// Nobody answered at the address, or the connect timed out.
    CannotConnect = 3,
    /// The server closed the connection, or it broke, before the session was over.
    ConnectionLost = 4,
    /// Script modes only: at least one `ERR` reply was received.
    ErrReply = 5,
}

impl Exit {
    /// The worse of two outcomes: a lost connection outranks an `ERR` reply,
    /// which outranks success, so the code reports the most serious problem.
    pub fn worst(self, other: Exit) -> Exit {
        let rank = |e: Exit| match e {
            Exit::Ok => 0,
            Exit::ErrReply => 1,
            Exit::ConnectionLost => 2,
            Exit::CannotConnect => 3,
            Exit::Other => 4,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// The exit-code table shown by `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  all went well
  1  other error (local I/O, internal)
  2  usage error (bad arguments)
  3  cannot connect (refused, unreachable, connect timeout)
  4  connection lost (server closed or broke the connection first,
     or sent no reply within --timeout after the input ended)
  5  an ERR reply was received (one-shot and pipe modes only)";

/// A failure that ends the session with a specific exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("cannot connect to {addr}: {reason}")]
    CannotConnect { addr: String, reason: String },
    #[error("connection lost: {0}")]
    ConnectionLost(String),
}

impl Failure {
    pub fn exit(&self) -> Exit {
        match self {
            Failure::CannotConnect { .. } => Exit::CannotConnect,
            Failure::ConnectionLost(_) => Exit::ConnectionLost,
        }
    }
}
