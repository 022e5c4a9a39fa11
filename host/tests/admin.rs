//! Admin access: `RELOAD` and the plugin files in `INFO` for clients from
//! an allowed address or authenticated with the secret; for everyone else,
//! the reply to an unknown command. A client from 127.0.0.2 stands for a
//! remote one.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use test_support::{Conn, HostProcess, HostStart, plugin_entry};

const SECRET: &str = "correct-horse-battery";
const UNKNOWN: &str = "MSG Command not found";

fn remote() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

fn set_mode(file: &Path, mode: u32) {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A host with `admin` as its `[admin]` table (none if empty), its config
/// readable by its user alone.
fn host(admin: &str) -> HostProcess {
    let start = HostStart::new();
    let config = start.dir().join("config.toml");
    // HostStart writes into the file that is there, keeping its mode.
    std::fs::write(&config, "").unwrap();
    set_mode(&config, 0o600);
    start
        .config(format!("{}{admin}", plugin_entry("hello")))
        .spawn()
}

/// Whether the `INFO` reply names a plugin file.
fn info_shows_files(conn: &mut Conn) -> bool {
    conn.ask_lines("INFO", "INFO")
        .iter()
        .any(|l| l.starts_with("INFO plugin ") && l.contains(" file="))
}

#[test]
fn without_an_admin_table_nobody_gets_admin_commands() {
    let host = host("");
    let (mut local, _) = Conn::open(host.addr());
    assert_eq!(local.ask("RELOAD"), UNKNOWN);
    assert_eq!(local.ask(&format!("AUTH {SECRET}")), UNKNOWN);
    assert!(!info_shows_files(&mut local));
    assert!(host.terminate().success());
}

#[test]
fn allowed_addresses_and_authenticated_clients_get_admin_commands_others_do_not() {
    let host = host(&format!("[admin]\nsecret = \"{SECRET}\"\n"));
    let (mut local, _) = Conn::open(host.addr());
    assert_eq!(local.ask("RELOAD"), "MSG reloaded");
    assert!(info_shows_files(&mut local));

    let (mut far, greeting) = Conn::open_from(remote(), host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(far.ask("RELOAD"), UNKNOWN);
    assert!(!info_shows_files(&mut far));
    assert_eq!(far.ask("AUTH wrong-secret-of-some-length"), UNKNOWN);
    assert_eq!(far.ask("RELOAD"), UNKNOWN);
    assert_eq!(far.ask(&format!("AUTH {SECRET}")), "MSG authenticated");
    assert_eq!(far.ask("RELOAD"), "MSG reloaded");
    assert!(info_shows_files(&mut far));
    // Another remote client is not authenticated by the first one.
    let (mut other, _) = Conn::open_from(remote(), host.addr());
    assert_eq!(other.ask("RELOAD"), UNKNOWN);

    let log = host.stderr();
    assert!(!log.contains(SECRET), "the secret was logged:\n{log}");
    assert!(host.terminate().success());
}

#[test]
fn an_empty_allow_list_admits_only_authenticated_clients() {
    let host = host(&format!("[admin]\nallow = []\nsecret = \"{SECRET}\"\n"));
    let (mut local, _) = Conn::open(host.addr());
    assert_eq!(local.ask("RELOAD"), UNKNOWN);
    assert_eq!(local.ask(&format!("AUTH {SECRET}")), "MSG authenticated");
    assert_eq!(local.ask("RELOAD"), "MSG reloaded");
    assert!(host.terminate().success());
}

#[test]
fn a_config_others_can_read_may_not_hold_the_secret() {
    let admin = format!("[admin]\nsecret = \"{SECRET}\"\n");
    // At start: refused, saying why.
    let out = HostStart::new()
        .config(format!("{}{admin}", plugin_entry("hello")))
        .run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("holds the admin secret") && out.stderr.contains("mode 644"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(SECRET), "{}", out.stderr);

    // At reload: refused, and the host serves on as before.
    let host = host(&admin);
    set_mode(&host.config_file(), 0o640);
    let out = host.reload();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("holds the admin secret"),
        "{}",
        out.stderr
    );
    let (mut local, _) = Conn::open(host.addr());
    assert_eq!(
        local.ask("RELOAD"),
        "ERR reload failed; serving on as before: refusing config.toml: it holds the admin secret and its group or others may read it (mode 640); `chmod 600` it, or give the secret up"
    );
    set_mode(&host.config_file(), 0o600);
    assert_eq!(local.ask("RELOAD"), "MSG reloaded");
    assert!(host.terminate().success());
}
