//! Plugin files on disk: dropped into the plugins directory, replaced while
//! the host runs, and refused when someone else could have written them.
//!
//! Giving a file to another user needs root: this file runs under
//! `libtest-mimic` (see `test_support::root`), so that where the tests do
//! not run as root that test is reported ignored, and as root it runs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use test_support::{Conn, HostStart, WAIT, build_workspace, plugin_path, wait_until};

/// A host loading `testkit` by name from its plugins directory.
fn drop_in(start: &HostStart) -> std::path::PathBuf {
    build_workspace();
    let dir = start.dir().join("plugins.d");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("libtestkit.so");
    std::fs::copy(plugin_path("testkit"), &file).unwrap();
    file
}

fn mapped_files(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap()
}

fn overwriting_the_dropped_file_while_serving_goes_unnoticed() {
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    let file = drop_in(&start);
    let host = start.spawn();
    let maps = mapped_files(host.serving_pid());
    assert!(
        !maps.contains(&*file.to_string_lossy()),
        "the user's file is mapped"
    );
    let copy = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("host-plugins-") && p.ends_with("libtestkit.so"))
        .expect("a private copy is mapped")
        .to_owned();

    let addr = host.addr();
    let stop = Arc::new(AtomicBool::new(false));
    // Replies received by all clients together, so that each overwrite can
    // wait until the host has served requests since the one before.
    let served = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                let (mut c, _) = Conn::open(addr);
                let mut n = 0u32;
                let deadline = Instant::now() + WAIT;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    assert_eq!(c.ask(&format!("ECHO {i} {n}")), format!("MSG {i} {n}"));
                    served.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let serve_some_more = || {
        let before = served.load(Ordering::Relaxed);
        let more = wait_until(WAIT, || served.load(Ordering::Relaxed) >= before + 20);
        assert!(more, "the clients stopped being served");
    };
    // Overwrite in place, as `cp new.so plugins.d/` does: same inode, new bytes.
    let other = std::fs::read(plugin_path("hello")).unwrap();
    let same = std::fs::read(plugin_path("testkit")).unwrap();
    for round in 0..6 {
        serve_some_more();
        std::fs::write(&file, if round % 2 == 0 { &other } else { &same }).unwrap();
    }
    std::fs::write(&file, b"garbage").unwrap();
    serve_some_more();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        assert!(c.join().expect("a client saw a wrong reply") > 0);
    }
    let (mut c, _) = Conn::open(addr);
    assert_eq!(c.ask("ECHO still here"), "MSG still here");
    assert!(host.terminate().success());
    assert!(
        !Path::new(&copy).exists(),
        "the private copy outlived the host"
    );
}

fn a_plugin_file_others_can_write_is_refused() {
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    let file = drop_in(&start);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let file = file.canonicalize().unwrap();
    let out = start.run();
    assert!(!out.status.success());
    let expected = format!(
        "refusing to load: file {} is writable by all users (mode 666); fix the permissions, \
         or set `strict_modes = false` in the config to allow it",
        file.display()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
}

fn strict_modes_can_be_relaxed() {
    let start = HostStart::new().config("strict_modes = false\n[[plugin]]\nname = \"testkit\"\n");
    let file = drop_in(&start);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let host = start.spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("ECHO ok"), "MSG ok");
}

fn a_plugins_directory_others_can_write_is_refused() {
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    let file = drop_in(&start);
    let dir = file.parent().unwrap().canonicalize().unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = start.run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!(
            "directory {} is writable by its group (mode 775)",
            dir.display()
        )),
        "{}",
        out.stderr
    );
}

fn a_plugin_file_owned_by_another_user_is_refused() {
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    let file = drop_in(&start);
    std::os::unix::fs::chown(&file, Some(54321), None).unwrap();
    let out = start.run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("belongs to user id 54321"),
        "{}",
        out.stderr
    );
}

fn a_plugin_name_cannot_escape_the_plugins_directory() {
    let out = HostStart::new()
        .config("[[plugin]]\nname = \"../evil\"\n")
        .run();
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("config.toml:2:8: plugin name \"../evil\" is not a plain name"),
        "{}",
        out.stderr
    );
}

/// `testkit`'s library copied into directory `dir` (created, then given
/// `mode`) under the host's directory; returns the copy's path.
fn library_in(start: &HostStart, dir: &str, mode: u32) -> std::path::PathBuf {
    build_workspace();
    let dir = start.dir().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("libtestkit.so");
    std::fs::copy(plugin_path("testkit"), &file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// A directory `dir` (created, then given `mode`) under the host's
/// directory, holding `libtestkit.so` as a symbolic link to `target`.
fn link_in(start: &HostStart, dir: &str, mode: u32, target: &Path) -> std::path::PathBuf {
    let dir = start.dir().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(target, dir.join("libtestkit.so")).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir.canonicalize().unwrap()
}

fn a_link_in_a_directory_others_can_write_is_refused_though_its_target_is_safe() {
    for (mode, by) in [(0o777, "all users"), (0o775, "its group")] {
        let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
        let target = library_in(&start, "build", 0o755);
        // Whoever can write `plugins.d/` can repoint the link.
        let links = link_in(&start, "plugins.d", mode, &target);
        let out = start.run();
        assert!(!out.status.success());
        let expected = format!(
            "refusing to load: directory {} is writable by {by} (mode {mode:o}); fix the \
             permissions, or set `strict_modes = false` in the config to allow it",
            links.display()
        );
        assert!(out.stderr.contains(&expected), "{}", out.stderr);
    }
}

fn a_link_to_the_build_output_loads() {
    // Users symlink the library cargo built into the plugins directory; the
    // target directory is checked all the way up, and here it is safe.
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    build_workspace();
    link_in(&start, "plugins.d", 0o755, &plugin_path("testkit"));
    let host = start.spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("ECHO linked"), "MSG linked");
    assert!(host.terminate().success());
}

fn a_relative_link_between_safe_directories_loads() {
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    library_in(&start, "build", 0o755);
    link_in(
        &start,
        "plugins.d",
        0o700,
        Path::new("../build/libtestkit.so"),
    );
    let host = start.spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("ECHO relative"), "MSG relative");
}

fn a_link_whose_target_directory_others_can_write_is_refused() {
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    let target = library_in(&start, "shared", 0o777);
    link_in(&start, "plugins.d", 0o755, &target);
    let shared = target.parent().unwrap().canonicalize().unwrap();
    let out = start.run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!(
            "directory {} is writable by all users (mode 777)",
            shared.display()
        )),
        "{}",
        out.stderr
    );
}

fn a_link_to_a_link_in_a_directory_others_can_write_is_refused() {
    // plugins.d/libtestkit.so -> ../hop/libtestkit.so -> ../build/libtestkit.so:
    // `hop` is neither on the configured path nor on the resolved one, but
    // whoever can write it decides what gets loaded.
    let start = HostStart::new().config("[[plugin]]\nname = \"testkit\"\n");
    library_in(&start, "build", 0o755);
    let hop = link_in(&start, "hop", 0o777, Path::new("../build/libtestkit.so"));
    link_in(
        &start,
        "plugins.d",
        0o755,
        Path::new("../hop/libtestkit.so"),
    );
    let out = start.run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!(
            "directory {} is writable by all users (mode 777)",
            hop.display()
        )),
        "{}",
        out.stderr
    );
}

fn an_ancestor_directory_others_can_write_is_refused() {
    // a/ (0777) / b/ (0700) / libtestkit.so: the file's own directory is
    // safe, but anyone can rename `a/b` away and put their own `b` there.
    // The host's directory itself lies under the sticky /tmp, which passes.
    let start = HostStart::new().config("[[plugin]]\npath = \"a/b/libtestkit.so\"\n");
    library_in(&start, "a/b", 0o700);
    let a = start.dir().join("a").canonicalize().unwrap();
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = start.run();
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!(
            "directory {} is writable by all users (mode 777)",
            a.display()
        )),
        "{}",
        out.stderr
    );

    // The same layout with `a` made safe loads.
    let start = HostStart::new().config("[[plugin]]\npath = \"a/b/libtestkit.so\"\n");
    library_in(&start, "a/b", 0o700);
    let a = start.dir().join("a");
    std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o755)).unwrap();
    let host = start.spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("ECHO nested"), "MSG nested");
}

test_support::test_main! {
    tests: [
        overwriting_the_dropped_file_while_serving_goes_unnoticed,
        a_plugin_file_others_can_write_is_refused,
        strict_modes_can_be_relaxed,
        a_plugins_directory_others_can_write_is_refused,
        a_plugin_name_cannot_escape_the_plugins_directory,
        a_link_in_a_directory_others_can_write_is_refused_though_its_target_is_safe,
        a_link_to_the_build_output_loads,
        a_relative_link_between_safe_directories_loads,
        a_link_whose_target_directory_others_can_write_is_refused,
        a_link_to_a_link_in_a_directory_others_can_write_is_refused,
        an_ancestor_directory_others_can_write_is_refused,
    ],
    root: [
        a_plugin_file_owned_by_another_user_is_refused,
    ],
}
