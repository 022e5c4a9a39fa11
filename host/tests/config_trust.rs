//! The config file decides which libraries the host runs, so it is refused,
//! like an untrusted plugin, when another user could have written it; and
//! only a regular file of a sane size is read.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use test_support::{HostOutput, HostStart, plugin_entry};

/// Generous bound for a refusal the issue wants within a second.
const PROMPTLY: Duration = Duration::from_secs(10);

/// `other.toml` in the host's directory, holding a valid config, with
/// `mode`; returns its path.
fn config_file(start: &HostStart, dir: &str, mode: u32) -> PathBuf {
    let dir = start.dir().join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("other.toml");
    std::fs::write(&file, plugin_entry("hello")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// Runs `start` with `--config file --check`: refused in one line, exit 1,
/// promptly. Returns that line.
fn refused(start: HostStart, file: &Path) -> String {
    let began = Instant::now();
    let out = start
        .arg("--config")
        .arg(file.display().to_string())
        .arg("--check")
        .run();
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(took < PROMPTLY, "took {took:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    out.stderr
}

fn checks(start: HostStart, file: &Path) -> HostOutput {
    let out = start
        .arg("--config")
        .arg(file.display().to_string())
        .arg("--check")
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    out
}

fn a_config_others_can_write_is_refused() {
    for (mode, by) in [(0o666, "all users"), (0o620, "its group")] {
        let start = HostStart::new();
        let file = config_file(&start, "conf", mode);
        let expected = format!(
            "error: refusing to read config {}: file {} is writable by {by} (mode {mode:o}); \
             only this user or root may be able to change a config",
            file.display(),
            file.canonicalize().unwrap().display()
        );
        let line = refused(start, &file);
        assert!(line.starts_with(&expected), "{line}");
    }
}

fn a_config_in_a_directory_others_can_write_is_refused_unless_sticky() {
    let start = HostStart::new();
    let file = config_file(&start, "open", 0o644);
    let dir = file.parent().unwrap().canonicalize().unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let line = refused(start, &file);
    assert!(
        line.contains(&format!(
            ": directory {} is writable by all users (mode 777);",
            dir.display()
        )),
        "{line}"
    );

    // Like /tmp: others may add files, not replace this one.
    let start = HostStart::new();
    let file = config_file(&start, "sticky", 0o644);
    let dir = file.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = checks(start, &file);
    assert!(out.stdout.contains("1. hello"), "{}", out.stdout);
}

fn a_private_config_is_read() {
    let start = HostStart::new();
    let file = config_file(&start, "conf", 0o600);
    let out = checks(start, &file);
    assert!(out.stdout.contains("1. hello"), "{}", out.stdout);
}

fn a_device_a_fifo_or_a_directory_as_config_is_refused_at_once() {
    let start = HostStart::new();
    let line = refused(start, Path::new("/dev/zero"));
    assert_eq!(
        line,
        "error: cannot read /dev/zero: a character device, not a regular file\n"
    );

    // A FIFO nobody writes to: reading it would wait forever.
    let start = HostStart::new();
    let fifo = start.dir().join("fifo.toml");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated string for the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let line = refused(start, &fifo);
    assert_eq!(
        line,
        format!(
            "error: cannot read {}: a named pipe (FIFO), not a regular file\n",
            fifo.display()
        )
    );

    let start = HostStart::new();
    let dir = start.dir().to_path_buf();
    let line = refused(start, &dir);
    assert_eq!(
        line,
        format!(
            "error: cannot read {}: a directory, not a regular file\n",
            dir.display()
        )
    );
}

fn a_config_too_large_is_refused_unread() {
    let start = HostStart::new();
    let file = start.dir().join("huge.toml");
    let comment = format!("# {}\n", "x".repeat(1021));
    std::fs::write(&file, comment.repeat(2048)).unwrap();
    let line = refused(start, &file);
    assert_eq!(
        line,
        format!(
            "error: cannot read {}: it is 2097152 bytes, more than a config may be (1048576)\n",
            file.display()
        )
    );
}

fn a_missing_config_names_its_cause_once() {
    let start = HostStart::new();
    let line = refused(start, Path::new("nowhere.toml"));
    assert_eq!(
        line,
        "error: cannot read nowhere.toml: No such file or directory (os error 2)\n"
    );
}

fn a_config_owned_by_another_user_is_refused() {
    let uid = test_support::root::nobody().uid;
    let start = HostStart::new();
    let file = config_file(&start, "conf", 0o644);
    std::os::unix::fs::chown(&file, Some(uid), None).unwrap();
    let expected = format!(
        ": file {} belongs to user id {uid}, not to this user (0) or root;",
        file.canonicalize().unwrap().display()
    );
    let line = refused(start, &file);
    assert!(line.contains(&expected), "{line}");
}

fn a_config_in_a_directory_of_another_user_is_refused() {
    let uid = test_support::root::nobody().uid;
    let start = HostStart::new();
    let file = config_file(&start, "theirs", 0o644);
    let dir = file.parent().unwrap().canonicalize().unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), None).unwrap();
    let line = refused(start, &file);
    assert!(
        line.contains(&format!(
            ": directory {} belongs to user id {uid}, not to this user (0) or root;",
            dir.display()
        )),
        "{line}"
    );
}

test_support::test_main! {
    tests: [
        a_config_others_can_write_is_refused,
        a_config_in_a_directory_others_can_write_is_refused_unless_sticky,
        a_private_config_is_read,
        a_device_a_fifo_or_a_directory_as_config_is_refused_at_once,
        a_config_too_large_is_refused_unread,
        a_missing_config_names_its_cause_once,
    ],
    root: [
        a_config_owned_by_another_user_is_refused,
        a_config_in_a_directory_of_another_user_is_refused,
    ],
}
