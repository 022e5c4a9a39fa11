//! The host's private copies of plugin libraries: private whatever the
//! umask, loaded from the very file written, and cleared away after a host
//! that died, without touching anything that is not a dead host's.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use test_support::{
    Conn, HostStart, WAIT, bin_path, build_workspace, copy_dirs, plugin_path, wait_bounded,
};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The real host, started through `sh` under umask `mask`, serving
/// `testkit` with its copies in `runtime`; returns it and its address once
/// it listens.
fn spawn_under_umask(dir: &Path, runtime: &Path, mask: &str) -> (Child, std::net::SocketAddr) {
    build_workspace();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[plugin]]\npath = {:?}\n",
            plugin_path("testkit").display().to_string()
        ),
    )
    .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
        .arg(bin_path("linehost"))
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .env("XDG_RUNTIME_DIR", runtime)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    let line = match rx.recv_timeout(WAIT) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "host did not start ({other:?}):\n{}",
                std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
            );
        }
    };
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, addr)
}

/// Stops `child` with SIGTERM, by its PID, bounded in time.
fn terminate(mut child: Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if wait_bounded(&mut child, WAIT).is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("host ignored SIGTERM");
    }
}

#[test]
fn copies_are_private_and_loaded_as_written_under_umask_000() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let (child, addr) = spawn_under_umask(dir.path(), runtime.path(), "000");
    let dirs = copy_dirs(runtime.path());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let copies = &dirs[0];
    assert_eq!(mode(copies), 0o700, "copy directory");
    assert_eq!(mode(&copies.join(".lock")), 0o600, "lock file");
    let copy = copies.join("0-libtestkit.so");
    assert_eq!(mode(&copy), 0o400, "copy");

    // The library mapped is the copy's inode, the file the host wrote.
    let inode = std::fs::metadata(&copy).unwrap().ino().to_string();
    // In the serving process, which loads the plugins.
    let serving = test_support::serving_pid_of(child.id());
    let maps = std::fs::read_to_string(format!("/proc/{serving}/maps")).unwrap();
    assert!(
        maps.lines().any(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields.len() >= 6 && fields[4] == inode && Path::new(fields[5]) == copy
        }),
        "the copy {} (inode {inode}) is not mapped:\n{maps}",
        copy.display()
    );
    let (mut c, _) = Conn::open(addr);
    assert_eq!(c.ask("ECHO private"), "MSG private");
    terminate(child);
    assert!(copy_dirs(runtime.path()).is_empty(), "the directory stayed");
}

#[test]
fn copies_are_private_under_a_umask_that_takes_everything() {
    // umask 777 would leave the directory unusable (mode 0), were its mode
    // not set explicitly.
    let dir = tempfile::tempdir().unwrap();
    let runtime = tempfile::tempdir().unwrap();
    let (child, addr) = spawn_under_umask(dir.path(), runtime.path(), "777");
    let dirs = copy_dirs(runtime.path());
    assert_eq!(mode(&dirs[0]), 0o700);
    assert_eq!(mode(&dirs[0].join("0-libtestkit.so")), 0o400);
    let (mut c, _) = Conn::open(addr);
    assert_eq!(c.ask("ECHO private"), "MSG private");
    terminate(child);
}

/// A host loading `hello`, with its copies in `runtime`.
fn host_in(runtime: &Path) -> HostStart {
    build_workspace();
    HostStart::new()
        .config(format!(
            "[[plugin]]\npath = {:?}\n",
            plugin_path("hello").display().to_string()
        ))
        .env("XDG_RUNTIME_DIR", runtime.display().to_string())
}

#[test]
fn the_next_start_removes_what_a_killed_host_left_and_nothing_else() {
    let runtime = tempfile::tempdir().unwrap();
    let base = runtime.path();

    // What must stay: a live host's directory, a directory named like ours
    // without a lock file (one still being made, or an older host's), and
    // anything named otherwise.
    let live = host_in(base).spawn();
    let live_dir = copy_dirs(base).pop().expect("the live host's directory");

    let mut killed = host_in(base).spawn();
    let left: Vec<PathBuf> = copy_dirs(base)
        .into_iter()
        .filter(|d| *d != live_dir)
        .collect();
    assert_eq!(left.len(), 1);
    killed.signal(libc::SIGKILL);
    assert!(killed.wait_exit(WAIT).is_some(), "SIGKILL did not end it");
    assert!(
        left[0].join("0-libhello.so").exists(),
        "SIGKILL left nothing"
    );

    let unlocked = base.join("host-plugins-unlocked");
    std::fs::create_dir(&unlocked).unwrap();
    std::fs::write(unlocked.join("0-libx.so"), b"x").unwrap();
    let other = base.join("other-dir");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(".lock"), b"").unwrap();

    let out = host_in(base).arg("--check").run();
    assert!(out.status.success(), "{}", out.stderr);
    assert!(!left[0].exists(), "the killed host's directory stayed");
    assert!(
        out.stderr
            .contains("removed 1 plugin copy directory left by hosts that are gone"),
        "{}",
        out.stderr
    );
    assert!(
        live_dir.join("0-libhello.so").exists(),
        "a live host's copy went"
    );
    assert!(unlocked.join("0-libx.so").exists() && other.join(".lock").exists());
    let (mut c, _) = Conn::open(live.addr());
    assert_eq!(c.ask("HELLO").split(' ').next(), Some("MSG"));
    assert!(live.terminate().success());
    assert!(
        !live_dir.exists(),
        "the live host did not clean up after itself"
    );
}

#[test]
fn a_runtime_directory_others_can_write_is_not_used() {
    // As under `sudo`, when $XDG_RUNTIME_DIR still names someone else's.
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let host = host_in(runtime.path()).spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO").split(' ').next(), Some("MSG"));
    assert!(copy_dirs(runtime.path()).is_empty(), "copies went there");
    assert!(host.terminate().success());
}
