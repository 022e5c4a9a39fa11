//! `HELP` lists exactly what dispatch serves: the host's own commands, then
//! every hook in dispatch order, as `--check` lists them.

use std::net::IpAddr;

use test_support::{Conn, HostStart, plugin_entry};

/// The `HELP` (or `HELP <topic>`) reply, without its `HELP end`.
fn help(conn: &mut Conn, request: &str) -> Vec<String> {
    conn.ask_lines(request, "HELP")
}

/// The command word of each line.
fn words(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap_or_default())
        .collect()
}

/// The hooks `--check` lists, in dispatch order: each one's pattern.
fn checked_patterns(config: &str) -> Vec<String> {
    let check = HostStart::new().config(config).arg("--check").run();
    assert!(check.status.success(), "{}", check.stderr);
    check
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("plugins, in dispatch order:"))
        .filter_map(|l| {
            let (number, pattern) = l.trim_start().split_once("  ")?;
            number.parse::<usize>().ok()?;
            Some(pattern.trim_end_matches("  [blocking]").to_owned())
        })
        .collect()
}

#[test]
fn help_lists_the_built_in_commands_then_every_hook_in_dispatch_order() {
    let config = format!("{}{}", plugin_entry("hello"), plugin_entry("testkit"));
    let patterns = checked_patterns(&config);
    assert!(patterns.len() > 10, "{patterns:?}");
    let host = HostStart::new().config(&config).spawn();
    let (mut conn, _) = Conn::open(host.addr());
    let lines = help(&mut conn, "HELP");
    assert_eq!(words(&lines[..3]), ["CLOSE", "INFO", "HELP"], "{lines:#?}");
    let hooks: Vec<&String> = lines[3..].iter().collect();
    assert_eq!(hooks.len(), patterns.len(), "{lines:#?}");
    // hello declares its usage and description; testkit's hooks declare
    // none, and are shown by their patterns.
    assert_eq!(
        hooks[0],
        "HELP HELLO (hello, hook 1) HELLO -- says hello with the server's name"
    );
    for (line, pattern) in hooks.iter().zip(&patterns).skip(1) {
        assert!(
            line.ends_with(&format!(" /{pattern}/")),
            "{line} for {pattern}"
        );
    }
    // Each built-in is served as HELP says.
    assert!(lines[1].contains("INFO --"), "{}", lines[1]);
    assert_eq!(
        help(&mut conn, "HELP ECHO"),
        ["HELP ECHO (testkit, hook 4) /ECHO (?P<text>.*)/"]
    );
    assert_eq!(words(&help(&mut conn, "HELP hello")), ["HELLO", "HELLO"]);
    assert_eq!(help(&mut conn, "HELP nosuch"), Vec::<String>::new());
    assert_eq!(conn.ask("HELPER"), "MSG Command not found");
    assert!(host.terminate().success());
}

#[test]
fn admin_commands_are_listed_only_to_admin_clients() {
    let host = HostStart::new()
        .config(format!("{}[admin]\n", plugin_entry("hello")))
        .spawn();
    let (mut local, _) = Conn::open(host.addr());
    assert_eq!(
        words(&help(&mut local, "HELP")),
        ["RELOAD", "CLOSE", "INFO", "HELP", "HELLO"]
    );
    let (mut far, _) = Conn::open_from(IpAddr::from([127, 0, 0, 2]), host.addr());
    assert_eq!(
        words(&help(&mut far, "HELP")),
        ["CLOSE", "INFO", "HELP", "HELLO"]
    );
    assert_eq!(help(&mut far, "HELP RELOAD"), Vec::<String>::new());
    assert!(host.terminate().success());
}
