//! Admin access: who may use the commands that reveal or change the server
//! (`RELOAD`, the plugin files in `INFO`).
//!
//! Off unless the config has an `[admin]` table. Then clients connecting
//! from an address in `allow` (default: loopback, `127.0.0.1` and `::1`)
//! may, and so may any client that sent `AUTH <secret>` with the table's
//! `secret`, compared in constant time. Everyone else is answered as if
//! these commands did not exist. A config holding a secret must be
//! readable by the host's user alone: the host refuses to start or reload
//! from one that group or others can read.

use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The `[admin]` table, checked.
#[derive(Clone, Debug)]
pub struct Admin {
    pub allow: Vec<IpAddr>,
    secret: Option<Secret>,
}

/// A secret that never shows in a log or a `Debug` print.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    #[serde(default = "yes")]
    enabled: bool,
    allow: Option<Vec<String>>,
    secret: Option<String>,
}

fn yes() -> bool {
    true
}

/// Shortest secret accepted: a short one is guessed by trying.
const MIN_SECRET: usize = 16;

impl Admin {
    /// The table as written; `None` if it says `enabled = false`.
    pub fn from_toml(value: &toml::Value) -> Result<Option<Admin>, String> {
        let raw: RawAdmin = value.clone().try_into().map_err(|e: toml::de::Error| {
            // The message may quote the value, and the value may be the secret.
            let message = e.message().trim().to_owned();
            if value.get("secret").is_some() && message.contains("secret") {
                "key `secret`: expected a string".to_owned()
            } else {
                message
            }
        })?;
        if !raw.enabled {
            return Ok(None);
        }
        let allow = match raw.allow {
            None => vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ],
            Some(list) => list
                .iter()
                .map(|a| {
                    a.parse::<IpAddr>()
                        .map_err(|_| format!("key `allow`: {a:?} is not an IP address"))
                })
                .collect::<Result<_, _>>()?,
        };
        if let Some(secret) = &raw.secret
            && secret.len() < MIN_SECRET
        {
            return Err(format!(
                "key `secret`: at least {MIN_SECRET} bytes; a short secret is guessed by trying"
            ));
        }
        Ok(Some(Admin {
            allow,
            secret: raw.secret.map(Secret),
        }))
    }

    /// Whether a client from `ip` may use admin commands without `AUTH`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow.contains(&ip.to_canonical())
    }

    /// Whether `AUTH` is offered at all: only with a secret.
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Whether `given` is the secret, in time that does not depend on how
    /// much of it is right.
    pub fn authenticates(&self, given: &str) -> bool {
        self.secret
            .as_ref()
            .is_some_and(|s| bool::from(s.0.as_bytes().ct_eq(given.as_bytes())))
    }
}

/// Refuses a config that holds a secret and that group or others can read.
pub fn check_secret_file(file: &Path, admin: Option<&Admin>) -> Result<(), String> {
    if !admin.is_some_and(Admin::has_secret) {
        return Ok(());
    }
    let mode = std::fs::metadata(file)
        .map_err(|e| format!("cannot check {}: {e}", file.display()))?
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "refusing {}: it holds the admin secret and its group or others may read it \
             (mode {:o}); `chmod 600` it, or give the secret up",
            file.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(text: &str) -> Result<Option<Admin>, String> {
        Admin::from_toml(&toml::Value::Table(toml::from_str(text).unwrap()))
    }

    #[test]
    fn defaults_and_checks() {
        let a = admin("").unwrap().unwrap();
        assert!(a.allows("127.0.0.1".parse().unwrap()));
        assert!(a.allows("::1".parse().unwrap()));
        assert!(a.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!a.allows("127.0.0.2".parse().unwrap()));
        assert!(!a.has_secret());
        assert!(admin("enabled = false").unwrap().is_none());
        assert!(admin("allow = [\"x\"]").unwrap_err().contains("\"x\""));
        let short = admin("secret = \"hunter2\"").unwrap_err();
        assert!(!short.contains("hunter2"), "{short}");
        let a = admin("secret = \"0123456789abcdef\"\nallow = []")
            .unwrap()
            .unwrap();
        assert!(a.authenticates("0123456789abcdef"));
        assert!(!a.authenticates("0123456789abcdeF"));
        assert!(!a.authenticates(""));
        assert!(!format!("{a:?}").contains("0123"));
    }
}
