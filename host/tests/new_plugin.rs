//! `linehost new-plugin NAME [DIR]`: the crate it writes builds outside
//! the workspace, loads and serves with the config lines it prints; a bad
//! name or a directory in use is refused before anything is written.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use test_support::{Conn, HostStart, WAIT, bin_path, build_outside, build_workspace, wait_or_kill};

/// What one run of `linehost new-plugin ...` did.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the real `linehost new-plugin` with `args` in `cwd`.
fn new_plugin(cwd: &Path, args: &[&str]) -> Run {
    build_workspace();
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut child = Command::new(bin_path("linehost"))
        .arg("new-plugin")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .expect("spawn linehost new-plugin");
    let status = wait_or_kill(&mut child, WAIT);
    Run {
        status,
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
    }
}

/// The `[[plugin]]` lines the output tells the user to add to config.toml.
fn config_lines(stdout: &str) -> &str {
    let start = stdout
        .find("\n[[plugin]]\n")
        .unwrap_or_else(|| panic!("no config lines in:\n{stdout}"))
        + 1;
    let len = stdout[start..]
        .find("\n\n")
        .expect("end of the config lines")
        + 1;
    &stdout[start..start + len]
}

#[test]
fn the_written_crate_builds_drops_in_and_serves() {
    let work = tempfile::tempdir().unwrap();
    let run = new_plugin(work.path(), &["scaffolded"]);
    assert!(run.status.success(), "{}", run.stderr);
    let krate = work.path().join("scaffolded");
    assert!(krate.join("Cargo.toml").is_file() && krate.join("src/lib.rs").is_file());
    assert!(
        run.stdout
            .contains("cp scaffolded/target/release/libscaffolded.so plugins.d/"),
        "{}",
        run.stdout
    );

    let built = build_outside(&krate, &[]);
    let start = HostStart::new().config(config_lines(&run.stdout));
    std::fs::create_dir(start.dir().join("plugins.d")).unwrap();
    std::fs::copy(
        built.join("libscaffolded.so"),
        start.dir().join("plugins.d/libscaffolded.so"),
    )
    .unwrap();
    let host = start.spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("SCAFFOLDED Ada"), "MSG Hello Ada");
    assert_eq!(c.ask("SCAFFOLDED"), "MSG Hello world");
}

#[test]
fn with_git_the_crate_depends_on_the_repository() {
    let work = tempfile::tempdir().unwrap();
    let url = "https://example.invalid/linehost.git";
    let run = new_plugin(work.path(), &["from-git", "elsewhere", "--git", url]);
    assert!(run.status.success(), "{}", run.stderr);
    let manifest = std::fs::read_to_string(work.path().join("elsewhere/Cargo.toml")).unwrap();
    let dependency = manifest
        .lines()
        .find(|l| l.starts_with("plugin-api = "))
        .unwrap_or_else(|| panic!("no plugin-api dependency in:\n{manifest}"));
    assert!(
        dependency.starts_with(&format!("plugin-api = {{ git = \"{url}\", version = \"0.")),
        "{dependency}"
    );
    assert!(manifest.contains("name = \"from-git\""), "{manifest}");
}

#[test]
fn a_name_that_is_not_a_plain_crate_name_is_refused() {
    let work = tempfile::tempdir().unwrap();
    for (name, why) in [
        (
            "my plugin",
            "' ' is not allowed; use letters, digits, `-` and `_`",
        ),
        ("2fa", "it must start with a letter"),
        (
            "fn",
            "cargo reserves it (a Rust keyword or a built-in crate)",
        ),
    ] {
        let run = new_plugin(work.path(), &[name]);
        assert_eq!(run.status.code(), Some(1), "{name}: {}", run.stdout);
        assert_eq!(
            run.stderr,
            format!(
                "error: {name:?} is not a plain crate name: {why} (for example `greeter` or \
                 `kv-store`)\n"
            )
        );
        assert!(!work.path().join(name).exists(), "{name} was written");
    }
}

#[test]
fn a_directory_in_use_is_not_overwritten_and_an_empty_one_is_used() {
    let work = tempfile::tempdir().unwrap();
    let taken = work.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let run = new_plugin(work.path(), &["taken"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.stdout);
    assert_eq!(
        run.stderr,
        "error: taken already exists and is not empty; name a new or empty directory\n"
    );
    let left: Vec<_> = std::fs::read_dir(&taken).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).unwrap(),
        "mine"
    );

    std::fs::create_dir(work.path().join("empty")).unwrap();
    let run = new_plugin(work.path(), &["fresh", "empty"]);
    assert!(run.status.success(), "{}", run.stderr);
    assert!(work.path().join("empty/src/lib.rs").is_file());
}
