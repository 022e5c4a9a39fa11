//! Config values that used to crash, hang or bloat the host end in one
//! error line naming file, line and key, and exit 1, promptly.

use std::time::{Duration, Instant};

use test_support::{HostOutput, HostStart, build_workspace, plugin_entry, plugin_path};

/// Generous bound for a refusal the issue wants within a second.
const PROMPTLY: Duration = Duration::from_secs(10);

/// Starts the host for real (not `--check`: some values failed only once
/// it served) and expects it to refuse to start.
fn refused(start: HostStart) -> HostOutput {
    let began = Instant::now();
    let out = start.run();
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(took < PROMPTLY, "took {took:?}");
    assert!(!out.stdout.contains("listening on"), "{}", out.stdout);
    out
}

#[test]
fn max_connections_beyond_what_the_semaphore_holds_is_refused() {
    for value in ["2305843009213693952", "9223372036854775807"] {
        let out = refused(HostStart::new().config(format!("max_connections = {value}\n")));
        assert_eq!(
            out.stderr,
            "error: config.toml:1:19: key `max_connections`: at most 2305843009213693951\n"
        );
    }
}

#[test]
fn worker_threads_has_an_upper_bound() {
    for value in ["1025", "1000000"] {
        let out = refused(
            HostStart::new().config(format!("server_name = \"x\"\nworker_threads = {value}\n")),
        );
        assert_eq!(
            out.stderr,
            "error: config.toml:2:18: key `worker_threads`: at most 1024\n"
        );
    }
}

#[test]
fn the_same_library_under_other_paths_is_recognised_before_it_is_copied() {
    build_workspace();
    let start = HostStart::new();
    let dir = start.dir().to_path_buf();
    std::os::unix::fs::symlink(plugin_path("hello"), dir.join("link.so")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    // Many entries, as the config that made 15 GiB of copies had.
    let mut config = plugin_entry("hello");
    config.push_str("[[plugin]]\npath = \"link.so\"\noptional = true\n");
    // Each path written differently: the same text twice is caught earlier.
    let path = |i: usize| format!("{}link.so", "sub/../".repeat(i + 1));
    for i in 0..200 {
        config.push_str(&format!("[[plugin]]\npath = \"{}\"\n", path(i)));
    }
    let first = plugin_path("hello").display().to_string();
    let out = refused(start.config(config));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 201, "{}", out.stderr);
    // `optional` does not cover a mistake in the config.
    assert_eq!(
        lines[0],
        format!(
            "error: config.toml:4:8: key `path`: plugin `link.so` is the same library file as \
             plugin `{first}` (line 2): {}; list each library once",
            dir.join("link.so").display()
        )
    );
    assert_eq!(
        lines[200],
        format!(
            "error: config.toml:405:8: key `path`: plugin `{}` is the same library file as \
             plugin `{first}` (line 2): {}; list each library once",
            path(199),
            dir.join(path(199)).display()
        )
    );
}

#[test]
fn the_same_library_by_name_and_by_path_is_recognised() {
    build_workspace();
    let start = HostStart::new();
    let plugins = start.dir().join("plugins.d");
    std::fs::create_dir(&plugins).unwrap();
    std::os::unix::fs::symlink(plugin_path("hello"), plugins.join("libhello.so")).unwrap();
    let out = refused(start.config(format!(
        "{}[[plugin]]\nname = \"hello\"\n",
        plugin_entry("hello")
    )));
    assert!(
        out.stderr.starts_with(
            "error: config.toml:4:8: key `name`: plugin `hello` is the same library file as plugin `"
        ),
        "{}",
        out.stderr
    );
}
