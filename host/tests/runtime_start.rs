//! Starting the runtime: a thread count the system cannot supply ends the
//! start with one error line, instead of a panic and a process that hangs.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{bin_path, build_workspace, wait_or_kill};

/// How quickly a refused start must end.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A copy of the host binary that user `nobody` can run, in a directory of
/// its own: the build directory may be closed to other users.
fn host_for_nobody(dir: &std::path::Path) -> PathBuf {
    build_workspace();
    let copy = dir.join("linehost");
    std::fs::copy(bin_path("linehost"), &copy).expect("copy the host binary");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod host");
    copy
}

fn more_threads_than_allowed_end_the_start_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = host_for_nobody(dir.path());
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nworker_threads = 64\n").expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    // RLIMIT_NPROC binds every user but root: as `nobody`, 20 processes
    // and threads in all leave no room for 64 workers.
    let nobody = test_support::root::nobody();
    let started = Instant::now();
    let mut command = Command::new(&host);
    command
        .arg("--config")
        .arg(&config)
        .uid(nobody.uid)
        .gid(nobody.gid)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only this process.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 20,
                rlim_max: 20,
            };
            if libc::setrlimit(libc::RLIMIT_NPROC, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut child = command.spawn().expect("start the host as nobody");
    let status = wait_or_kill(&mut child, START_LIMIT);
    let elapsed = started.elapsed();
    let output = child.wait_with_output().expect("host output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        status.code(),
        Some(1),
        "stderr:\n{stderr}\nstdout:\n{stdout}"
    );
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    assert!(
        errors[0].starts_with("error: worker_threads = 64 in ")
            && errors[0].contains("refused to start 64 threads"),
        "names the key and the cause: {}",
        errors[0]
    );
    assert!(
        !stdout.contains("listening on"),
        "never announced: {stdout}"
    );
    assert!(elapsed < START_LIMIT, "ended in {elapsed:?}");
}

test_support::test_main! {
    tests: [],
    root: [more_threads_than_allowed_end_the_start_with_one_line],
}
