//! Plugins hear every connection open and close, however it ends, and get
//! back on close the state they kept for it (plugin-api 0.2).

use std::collections::HashMap;
use std::time::Duration;

use test_support::{Conn, HostStart, WAIT, plugin_entry, wait_until};

/// The `open`/`close` lines gatekeeper recorded, by peer address: the
/// connection id, and the name its state held when it closed.
fn events(text: &str) -> HashMap<String, (u64, Option<String>)> {
    let mut by_peer = HashMap::new();
    let mut peers = HashMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["open", id, peer] => {
                let id: u64 = id.parse().unwrap();
                peers.insert(id, peer.to_owned());
                by_peer.insert(peer.to_owned(), (id, None));
            }
            ["close", id, name] => {
                let id: u64 = id.parse().unwrap();
                let peer = &peers[&id];
                by_peer.get_mut(peer).unwrap().1 = Some(name.to_owned());
            }
            _ => panic!("unexpected event line {line:?}"),
        }
    }
    by_peer
}

#[test]
fn every_way_a_connection_ends_is_told_to_plugins_with_its_state() {
    let start = HostStart::new();
    let log = start.dir().join("events.log");
    let mut host = start
        .config(format!(
            "idle_timeout_secs = 2\n{}[plugin.settings]\nevents = {:?}\n{}",
            plugin_entry("gatekeeper"),
            log.display().to_string(),
            plugin_entry("testkit")
        ))
        .spawn();
    let addr = host.addr();
    let peer = |c: &Conn| c.stream().local_addr().unwrap().to_string();

    // The client closes its side.
    let (c, _) = Conn::open(addr);
    let client_closed = peer(&c);
    drop(c);
    // CLOSE, after logging in: the name is the state handed back.
    let (mut c, _) = Conn::open(addr);
    let close_command = peer(&c);
    assert_eq!(c.ask("LOGIN ada"), "MSG welcome ada");
    assert_eq!(c.ask("CLOSE"), "CLOSE CONFIRM");
    assert!(c.is_closed());
    // A hook closes it (testkit's BYE, past the gate).
    let (mut c, _) = Conn::open(addr);
    let hook_closed = peer(&c);
    assert_eq!(c.ask("LOGIN bob"), "MSG welcome bob");
    assert_eq!(c.ask("BYE"), "MSG bye");
    assert!(c.is_closed());
    // The idle timeout.
    let (mut idle, _) = Conn::open(addr);
    let idled = peer(&idle);
    assert_eq!(idle.ask("LOGIN cy"), "MSG welcome cy");
    assert!(idle.line().starts_with("MSG Closing idle connection"));
    // The host stops with this one still open.
    let (mut last, _) = Conn::open(addr);
    let stopped = peer(&last);
    assert_eq!(last.ask("LOGIN dee"), "MSG welcome dee");
    assert!(wait_until(WAIT, || {
        let seen = events(&std::fs::read_to_string(&log).unwrap_or_default());
        [&client_closed, &close_command, &hook_closed, &idled]
            .iter()
            .all(|p| seen.get(*p).is_some_and(|(_, closed)| closed.is_some()))
    }));
    host.signal(libc::SIGTERM);
    assert_eq!(last.line(), "MSG Server shutting down");
    assert!(host.wait_exit(Duration::from_secs(30)).is_some());

    let seen = events(&std::fs::read_to_string(&log).unwrap());
    let closed = |p: &String| seen[p].1.clone();
    assert_eq!(closed(&client_closed).as_deref(), Some("-"));
    assert_eq!(closed(&close_command).as_deref(), Some("ada"));
    assert_eq!(closed(&hook_closed).as_deref(), Some("bob"));
    assert_eq!(closed(&idled).as_deref(), Some("cy"));
    assert_eq!(closed(&stopped).as_deref(), Some("dee"));
}

#[test]
fn a_state_held_by_a_timed_out_call_goes_back_to_the_plugin_and_the_connection_starts_afresh() {
    let start = HostStart::new();
    let log = start.dir().join("events.log");
    let host = start
        .config(format!(
            "hook_timeout_secs = 1\n{}[plugin.settings]\nevents = {:?}\n",
            plugin_entry("gatekeeper"),
            log.display().to_string(),
        ))
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("LOGIN ada"), "MSG welcome ada");
    assert_eq!(
        c.ask("SNOOZE 0"),
        "MSG ada",
        "a blocking call gets the state"
    );
    assert_eq!(c.ask("SNOOZE 2500"), "ERR plugin gatekeeper timed out");
    // The call still runs, with the state: this connection starts afresh.
    assert_eq!(c.ask("ME"), "ERR login first");
    assert_eq!(c.ask("LOGIN bob"), "MSG welcome bob");
    // When the abandoned call ends, its state goes to `disconnected`,
    // while the connection is still open.
    let closes = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("close "))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(wait_until(WAIT, || closes() == ["ada"]), "{:?}", closes());
    assert_eq!(c.ask("ME").split(' ').nth(1), Some("bob"));
    drop(c);
    assert!(
        wait_until(WAIT, || closes() == ["ada", "bob"]),
        "{:?}",
        closes()
    );
}

#[test]
fn a_reload_hands_a_removed_plugins_state_back_and_starts_an_added_one() {
    let start = HostStart::new();
    let log = start.dir().join("events.log");
    let gatekeeper = format!(
        "{}[plugin.settings]\nevents = {:?}\n",
        plugin_entry("gatekeeper"),
        log.display().to_string()
    );
    let host = start
        .config(format!("{gatekeeper}{}", plugin_entry("testkit")))
        .spawn();
    let events = || std::fs::read_to_string(&log).unwrap_or_default();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("LOGIN ada"), "MSG welcome ada");
    // A pending reply of the plugin about to go, answered after the reload.
    c.send("LATER 1500 promised");

    // The reload removes gatekeeper; the connection stays.
    std::fs::write(host.config_file(), plugin_entry("testkit")).unwrap();
    let reloaded = host.reload();
    assert!(reloaded.status.success(), "{reloaded:?}");
    assert_eq!(c.line(), "MSG promised", "a pending reply still comes");
    assert!(!events().contains("close"), "{}", events());
    // The next line uses the new table: no gate, and gatekeeper gets the
    // connection's state back.
    assert_eq!(c.ask("ECHO free"), "MSG free");
    assert!(
        wait_until(WAIT, || events()
            .lines()
            .any(|l| l.starts_with("close ") && l.ends_with(" ada"))),
        "{}",
        events()
    );

    // Added back: a fresh instance, which this connection meets on its
    // next line, logged out.
    std::fs::write(
        host.config_file(),
        format!("{gatekeeper}{}", plugin_entry("testkit")),
    )
    .unwrap();
    let reloaded = host.reload();
    assert!(reloaded.status.success(), "{reloaded:?}");
    assert_eq!(c.ask("ECHO gated"), "ERR login first");
    assert_eq!(
        events().lines().filter(|l| l.starts_with("open ")).count(),
        2,
        "{}",
        events()
    );
}
