//! Reloading a running host: `linehost reload` and SIGHUP re-read the
//! config and the plugin files; clients stay connected, unchanged plugins
//! keep their state, and a reload that fails changes nothing.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use test_support::{
    Conn, HostProcess, HostStart, WAIT, build_test_plugin, plugin_entry, wait_until,
};

/// `test-plugins/versioned` built as version 1 and as version 2, each
/// copied to a file of its own (the builds share one output file).
fn versions() -> (&'static Path, &'static Path) {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    let (_, v1, v2) = BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let v1 = dir.path().join("v1.so");
        let v2 = dir.path().join("v2.so");
        std::fs::copy(build_test_plugin("versioned", &[]), &v1).unwrap();
        std::fs::copy(build_test_plugin("versioned", &["--features", "v2"]), &v2).unwrap();
        (dir, v1, v2)
    });
    (v1, v2)
}

/// Installs `version` as the host's plugin file, replacing what was there
/// the way a user would: a new file renamed over the old one.
fn install(dir: &Path, version: &Path) -> PathBuf {
    let target = dir.join("libversioned.so");
    let staged = dir.join("libversioned.so.new");
    std::fs::copy(version, &staged).unwrap();
    std::fs::rename(&staged, &target).unwrap();
    target
}

fn versioned_entry(file: &Path, settings: &str) -> String {
    format!(
        "[[plugin]]\npath = {:?}\n[plugin.settings]\n{settings}\n",
        file.display().to_string()
    )
}

fn reload_ok(host: &HostProcess) {
    let out = host.reload();
    assert!(
        out.status.success(),
        "reload failed: {}\nhost log:\n{}",
        out.stderr,
        host.stderr()
    );
}

#[test]
fn a_client_stays_connected_while_version_1_is_replaced_by_version_2() {
    let (v1, v2) = versions();
    let start = HostStart::new();
    let file = install(start.dir(), v1);
    let start = start.config(versioned_entry(&file, ""));
    let host = start.spawn();
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("VERSION"), "MSG versioned 1");

    install(host.config_file().parent().unwrap(), v2);
    // The file changed under the running host; nothing changes until asked.
    assert_eq!(conn.ask("VERSION"), "MSG versioned 1");
    reload_ok(&host);
    assert_eq!(conn.ask("VERSION"), "MSG versioned 2", "same connection");

    // Back to version 1, by SIGHUP this time.
    install(host.config_file().parent().unwrap(), v1);
    host.signal(libc::SIGHUP);
    let mut answer = String::new();
    assert!(
        wait_until(WAIT, || {
            answer = conn.ask("VERSION");
            answer == "MSG versioned 1"
        }),
        "still {answer:?} after SIGHUP; log:\n{}",
        host.stderr()
    );
    let (mut other, greeting) = Conn::open(host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(other.ask("VERSION"), "MSG versioned 1");
    assert!(host.terminate().success());
}

#[test]
fn a_broken_config_leaves_the_old_table_and_says_why() {
    let (v1, _) = versions();
    let start = HostStart::new();
    let file = install(start.dir(), v1);
    let host = start.config(versioned_entry(&file, "")).spawn();
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("COUNT"), "COUNT 1");
    let good = std::fs::read_to_string(host.config_file()).unwrap();

    let broken = [
        // Bad TOML.
        ("max_line_length = \n".to_owned(), "config.toml:1"),
        // A plugin that is not there.
        (format!("{good}[[plugin]]\nname = \"nosuch\"\n"), "nosuch"),
        // A plugin that refuses its settings.
        (
            versioned_entry(&file, "fail_init = \"no thanks\""),
            "no thanks",
        ),
        // More calls at once than the serving process has threads for.
        (
            format!(
                "[[plugin]]\npath = {:?}\nmax_plugin_calls = 4096\n",
                file.display().to_string()
            ),
            "restart the host",
        ),
        // A plugin file others may write.
        (versioned_entry(&file, ""), "writable by all users"),
    ];
    for (i, (config, reason)) in broken.iter().enumerate() {
        if i == 4 {
            set_mode(&file, 0o666);
        }
        std::fs::write(host.config_file(), config).unwrap();
        let out = host.reload();
        assert!(!out.status.success(), "reload {i} succeeded");
        assert!(
            out.stderr.contains(reason) && out.stderr.contains("serves on as before"),
            "reload {i}: {}",
            out.stderr
        );
        // The same instance serves: its count goes on.
        assert_eq!(conn.ask("COUNT"), format!("COUNT {}", i + 2));
    }
    set_mode(&file, 0o644);
    std::fs::write(host.config_file(), &good).unwrap();
    reload_ok(&host);
    assert_eq!(
        conn.ask("COUNT"),
        "COUNT 7",
        "unchanged plugin keeps its state"
    );
    assert!(host.stderr().contains("reload failed"), "{}", host.stderr());
}

fn set_mode(file: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn added_removed_and_reordered_plugins_take_effect() {
    let (v1, _) = versions();
    let hello = plugin_entry("hello");
    let testkit = plugin_entry("testkit");
    let start = HostStart::new();
    let file = install(start.dir(), v1);
    let versioned = versioned_entry(&file, "label = \"a\"");
    let host = start
        .config(format!("server_name = \"box\"\n{hello}{testkit}"))
        .spawn();
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("HELLO"), "MSG Hello from box");
    assert_eq!(conn.ask("VERSION"), "MSG Command not found");

    // Reordered: testkit's HELLO now comes first.
    std::fs::write(
        host.config_file(),
        format!("server_name = \"box\"\n{testkit}{hello}"),
    )
    .unwrap();
    reload_ok(&host);
    assert_eq!(conn.ask("HELLO"), "MSG testkit says hello");

    // Added.
    std::fs::write(
        host.config_file(),
        format!("server_name = \"box\"\n{testkit}{hello}{versioned}"),
    )
    .unwrap();
    reload_ok(&host);
    assert_eq!(conn.ask("VERSION"), "MSG versioned 1");
    assert_eq!(conn.ask("COUNT"), "COUNT 1");
    assert_eq!(conn.ask("LABEL"), "MSG label=a");

    // Changed settings reach the plugin: a new instance, so a new count.
    let relabelled = versioned_entry(&file, "label = \"b\"");
    std::fs::write(
        host.config_file(),
        format!("server_name = \"box\"\n{relabelled}{hello}"),
    )
    .unwrap();
    reload_ok(&host);
    assert_eq!(conn.ask("LABEL"), "MSG label=b");
    assert_eq!(conn.ask("COUNT"), "COUNT 1");
    // Removed: testkit is gone, hello answers HELLO again.
    assert_eq!(conn.ask("HELLO"), "MSG Hello from box");
    assert_eq!(conn.ask("ECHO x"), "MSG Command not found");
    assert!(host.terminate().success());
}

#[test]
fn after_a_reload_a_restarted_serving_process_serves_the_reloaded_config() {
    let (v1, v2) = versions();
    let crashkit = plugin_entry("crashkit");
    let start = HostStart::new();
    let file = install(start.dir(), v1);
    let host = start.config(versioned_entry(&file, "")).spawn();
    install(host.config_file().parent().unwrap(), v2);
    std::fs::write(
        host.config_file(),
        format!("{crashkit}{}", versioned_entry(&file, "")),
    )
    .unwrap();
    reload_ok(&host);
    let before = host.serving_pid();
    let (mut conn, _) = Conn::open(host.addr());
    conn.send("SEGV");
    assert!(conn.is_closed());
    assert!(wait_until(WAIT, || host.serving_pid() != before));
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("VERSION"), "MSG versioned 2");
    assert!(host.terminate().success());
}

/// One client pipelining `COUNT` requests until told to stop; the replies
/// it got, which must be a gapless count.
fn pipeline(addr: std::net::SocketAddr, stop: &std::sync::atomic::AtomicBool) -> u64 {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut answered = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
        writer
            .write_all(b"VERSION\nVERSION\nVERSION\nVERSION\n")
            .unwrap();
        for _ in 0..4 {
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "MSG versioned 1\n", "after {answered} replies");
            answered += 1;
        }
    }
    answered
}

#[test]
#[cfg_attr(
    linehost_asan,
    ignore = "AddressSanitizer holds freed memory in quarantine: RSS measures nothing here"
)]
fn a_hundred_reloads_under_pipelining_clients_lose_no_reply_and_keep_rss_bounded() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (v1, _) = versions();
    let start = HostStart::new();
    let file = install(start.dir(), v1);
    let host = start.config(versioned_entry(&file, "")).spawn();
    let stop = AtomicBool::new(false);
    let (answered, rss) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..20)
            .map(|_| s.spawn(|| pipeline(host.addr(), &stop)))
            .collect();
        let mut rss = Vec::new();
        for i in 0..100 {
            // Every tenth reload with the settings changed: a new instance
            // from the library already mapped.
            let settings = format!("label = \"{}\"", i / 10);
            std::fs::write(host.config_file(), versioned_entry(&file, &settings)).unwrap();
            reload_ok(&host);
            if i == 9 || i == 99 {
                rss.push(host.rss_kib());
            }
        }
        stop.store(true, Ordering::Relaxed);
        let answered: Vec<u64> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        (answered, rss)
    });
    assert!(answered.iter().all(|&n| n > 0), "{answered:?}");
    println!(
        "after 10 reloads: RSS {} KiB; after 100: {} KiB; replies: {}",
        rss[0],
        rss[1],
        answered.iter().sum::<u64>()
    );
    // Ninety more reloads of an unchanged library may cost the allocator's
    // slack, not a library or a table each.
    assert!(rss[1] < rss[0] + 8 * 1024, "RSS grew: {rss:?}");
    let (mut conn, _) = Conn::open(host.addr());
    assert_eq!(conn.ask("LABEL"), "MSG label=9");
    assert!(host.terminate().success());
}

#[test]
fn a_request_in_flight_finishes_on_its_table_and_the_next_line_uses_the_new_one() {
    let testkit = plugin_entry("testkit");
    let hello = plugin_entry("hello");
    let host = HostStart::new()
        .config(format!("server_name = \"box\"\n{testkit}{hello}"))
        .spawn();
    let (mut conn, _) = Conn::open(host.addr());
    conn.send("SLEEP 4000");
    // Running for a second: the watchdog says so.
    assert!(
        wait_until(WAIT, || host.stderr().contains("hook still running")),
        "{}",
        host.stderr()
    );
    std::fs::write(
        host.config_file(),
        format!("server_name = \"box\"\n{hello}"),
    )
    .unwrap();
    reload_ok(&host);
    // testkit is out of the table, and its call still answers.
    assert_eq!(conn.line(), "MSG slept 4000");
    assert_eq!(conn.ask("SLEEP 1"), "MSG Command not found");
    assert_eq!(conn.ask("HELLO"), "MSG Hello from box");
    assert!(host.terminate().success());
}
