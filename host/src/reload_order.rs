//! Reloading, in the supervisor: read and check the config and the plugin
//! files again, copy the libraries that changed, and have the serving
//! process build and swap in the new table ([`crate::reload`]).
//!
//! Nothing is kept unless the serving process says the new table serves:
//! a reload that fails anywhere leaves the supervisor's config and copies,
//! and so the next serving process it starts, as they were.

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::control;
use crate::plugins::{self, Prepared, RuntimeDir};

/// How long a serving process may take to start the plugins of a reload.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// A reload the serving process accepted.
pub struct Reloaded {
    pub config: Config,
    pub config_text: String,
    pub prepared: Vec<Prepared>,
    /// Optional plugins that were skipped, one line each.
    pub notes: String,
}

/// Reads `current.file` again, prepares its plugins, keeping the copies in
/// `previous` whose libraries did not change, and sends it all over
/// `channel`. The channel is taken, and given back unless it broke.
pub async fn reload(
    current: &Config,
    runtime_dir: &RuntimeDir,
    previous: &[Prepared],
    channel: &mut Option<UnixStream>,
) -> Result<Reloaded, String> {
    let text = Config::read(&current.file).map_err(|e| e.to_string())?;
    let mut config = Config::parse(&current.file, &text).map_err(|e| e.to_string())?;
    crate::admin::check_secret_file(&current.file, config.admin.as_ref())?;
    // The socket is bound once, by the supervisor, for the host's life.
    config.listen = current.listen;
    // So is the TLS listener, and its files are read once: serving
    // processes started after this reload must find the [tls] they serve.
    if config.tls != current.tls {
        return Err(
            "[tls] changed; it is read once, at start: restart the host to apply it".into(),
        );
    }
    let report = plugins::prepare_all_reusing(&config, runtime_dir, previous);
    if !report.errors.is_empty() {
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        return Err(errors.join("\n"));
    }
    let mut notes: Vec<String> = report
        .skipped
        .iter()
        .map(|e| format!("skipping optional {e}"))
        .collect();
    let order: Vec<(usize, u64, PathBuf, i32)> = report
        .prepared
        .iter()
        .map(|p| (p.index, p.copy.fd as u64, p.file.clone(), p.copy.fd))
        .collect();
    let Some(mut stream) = channel.take() else {
        return Err("the serving process is not ready for a reload; try again".into());
    };
    let config_text = text.clone();
    let exchange = tokio::task::spawn_blocking(move || {
        let result = stream
            .set_read_timeout(Some(RELOAD_TIMEOUT))
            .and_then(|()| control::send_order(&mut stream, &config_text, &order))
            .and_then(|()| control::recv_outcome(&mut stream));
        (stream, result)
    })
    .await;
    let outcome = match exchange {
        Ok((stream, Ok(outcome))) => {
            *channel = Some(stream);
            outcome
        }
        // The channel is out of step or gone: the serving process died
        // while loading, or a plugin's start hangs. The next serving
        // process gets a new channel.
        Ok((_, Err(e))) => {
            return Err(format!(
                "the serving process did not answer the reload ({e}); it serves on as before"
            ));
        }
        Err(e) => return Err(format!("the reload did not finish: {e}")),
    };
    let more = outcome?;
    if !more.is_empty() {
        notes.push(more);
    }
    Ok(Reloaded {
        config,
        config_text: text,
        prepared: report.prepared,
        notes: notes.join("\n"),
    })
}
