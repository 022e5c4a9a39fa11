use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Whether this test process has built the workspace.
static BUILT: Mutex<bool> = Mutex::new(false);

/// The directory holding this build's artifacts (`target/debug` for `cargo test`).
///
/// Found from the running test executable, which cargo puts in `<dir>/deps/`.
pub fn artifact_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("test executable has a parent");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// The target the tests were built for with `--target`, if they were.
///
/// Built so (as the sanitizer run is, to keep its flags away from proc
/// macros), artifacts sit in `<target-dir>/<triple>/<profile>`, and any
/// cargo build a test starts must name the same triple to use the same
/// flags. Cargo marks both the target directory and the triple's directory
/// inside it with CACHEDIR.TAG.
pub fn target_triple() -> Option<String> {
    let dir = artifact_dir();
    let triple_dir = dir.parent()?;
    triple_dir
        .parent()
        .filter(|d| d.join("CACHEDIR.TAG").exists())?;
    Some(triple_dir.file_name()?.to_str()?.to_owned())
}

/// Makes sure the named workspace packages (binaries and `cdylib`s) are
/// built, with the profile, target and target directory of the running test.
///
/// The first call in a test process builds the whole workspace, and later
/// calls return at once. One `cargo build --workspace` for every test, rather
/// than `-p` for the packages each one names, gives every nested build the
/// same feature set: builds of a few packages each resolve features of their
/// own and compile their own copies of the dependencies, which on a cold
/// run cost more than the tests themselves.
///
/// Panics with cargo's output if the build fails: a test cannot go on without it.
pub fn build(packages: &[&str]) {
    let _ = packages;
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if *built {
        return;
    }
    let dir = artifact_dir();
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile directory name")
        .to_owned();
    let parent = dir.parent().expect("target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").arg("--quiet").arg("--workspace");
    match target_triple() {
        Some(triple) => {
            let target_dir = parent.parent().expect("target directory");
            cmd.arg("--target-dir")
                .arg(target_dir)
                .arg("--target")
                .arg(triple);
        }
        None => {
            cmd.arg("--target-dir").arg(parent);
        }
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.arg("--profile").arg(other);
        }
    }
    let out = cmd.output().expect("running cargo build");
    assert!(
        out.status.success(),
        "cargo build --workspace failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    *built = true;
}

/// Path of the compiled plugin library of package `name` (`lib<name>.so` on Linux).
pub fn plugin_path(name: &str) -> PathBuf {
    artifact_dir().join(plugin_api::library_file_name(name))
}

/// Path of the workspace binary `name`.
pub fn bin_path(name: &str) -> PathBuf {
    artifact_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A `[[plugin]]` config entry loading the workspace's compiled plugin
/// `name` by path, building it first.
pub fn plugin_entry(name: &str) -> String {
    build(&[name]);
    format!(
        "[[plugin]]\npath = {:?}\n",
        plugin_path(name).display().to_string()
    )
}
