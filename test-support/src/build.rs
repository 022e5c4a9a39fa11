use std::path::{Path, PathBuf};
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

/// Where the running test's artifacts are: its target directory, and the
/// target and profile it was built with.
struct Layout {
    target_dir: PathBuf,
    /// Set when the tests were built for an explicit target, as the
    /// sanitizer run is (`CARGO_BUILD_TARGET`, to keep its flags away from
    /// proc macros): artifacts then sit in `<target-dir>/<triple>/<profile>`,
    /// and every cargo build a test starts must build for the same triple
    /// to get the same flags.
    triple: Option<String>,
    profile: String,
}

impl Layout {
    fn of_this_test() -> Layout {
        let dir = artifact_dir();
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("profile directory name")
            .to_owned();
        let parent = dir.parent().expect("target directory");
        // Cargo builds for the target this variable names when no
        // `--target` is given, and the nested builds inherit it.
        match std::env::var("CARGO_BUILD_TARGET") {
            Ok(triple) if !triple.is_empty() => Layout {
                target_dir: parent
                    .parent()
                    .expect("target directory above the triple's")
                    .to_path_buf(),
                triple: Some(triple),
                profile,
            },
            _ => Layout {
                target_dir: parent.to_path_buf(),
                triple: None,
                profile,
            },
        }
    }

    /// `cargo build` into `target_dir` with this layout's target and profile.
    fn cargo_build(&self, target_dir: &Path) -> Command {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.arg("build")
            .arg("--quiet")
            .arg("--target-dir")
            .arg(target_dir);
        if let Some(triple) = &self.triple {
            cmd.arg("--target").arg(triple);
        }
        match self.profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.arg("--profile").arg(other);
            }
        }
        cmd
    }

    /// Where a build into `target_dir` puts its artifacts.
    fn artifacts_in(&self, target_dir: &Path) -> PathBuf {
        let mut dir = target_dir.to_path_buf();
        if let Some(triple) = &self.triple {
            dir.push(triple);
        }
        dir.join(&self.profile)
    }
}

/// Runs `cmd`; panics with cargo's output if it fails.
fn run_cargo(mut cmd: Command, what: &str) {
    let out = cmd.output().expect("running cargo");
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes sure every workspace package (binaries and `cdylib`s) is built,
/// with the profile, target and target directory of the running test.
///
/// The first call in a test process builds, later calls return at once. One `cargo build --workspace` for every test, rather
/// than `-p` for the packages each one names, gives every nested build the
/// same feature set: builds of a few packages each resolve features of their
/// own and compile their own copies of the dependencies, which on a cold
/// run cost more than the tests themselves.
///
/// Panics with cargo's output if the build fails: a test cannot go on without it.
pub fn build_workspace() {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if *built {
        return;
    }
    let layout = Layout::of_this_test();
    let mut cmd = layout.cargo_build(&layout.target_dir);
    cmd.arg("--workspace");
    run_cargo(cmd, "cargo build --workspace");
    *built = true;
}

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support sits in the workspace")
        .to_path_buf()
}

/// Builds the crate or workspace in `dir`, which lies outside this
/// workspace, as a plugin author would, with extra cargo `args` (`-p NAME`);
/// returns the directory holding what it built.
///
/// It gets the workspace's lock file, so that it builds with the same
/// dependency versions, and a target directory shared by every such build,
/// so that what one compiled the next reuses.
pub fn build_outside(dir: &Path, args: &[&str]) -> PathBuf {
    std::fs::copy(workspace_dir().join("Cargo.lock"), dir.join("Cargo.lock"))
        .expect("copy the workspace's lock file");
    let layout = Layout::of_this_test();
    let target_dir = layout.target_dir.join("third-party");
    let mut cmd = layout.cargo_build(&target_dir);
    cmd.args(args).current_dir(dir);
    run_cargo(cmd, &format!("cargo build in {}", dir.display()));
    layout.artifacts_in(&target_dir)
}

/// Builds `test-plugins/<name>`, a test plugin kept out of the workspace
/// (a profile or features of its own), as a third party would: a copy
/// outside the workspace, with the `plugin-api` path made absolute, built
/// with extra cargo `args` (`--features v2`). Returns the library.
///
/// Builds share a target directory, so a later build with other features
/// writes the same file: copy it before building the crate again.
pub fn build_test_plugin(name: &str, args: &[&str]) -> PathBuf {
    let source = workspace_dir().join("test-plugins").join(name);
    let krate = tempfile::tempdir().expect("temp dir");
    let manifest = std::fs::read_to_string(source.join("Cargo.toml")).expect("read the manifest");
    let api = workspace_dir().join("plugin-api");
    let manifest = manifest.replace(
        "\"../../plugin-api\"",
        &format!("{:?}", api.display().to_string()),
    );
    assert!(manifest.contains(&api.display().to_string()), "{manifest}");
    std::fs::write(krate.path().join("Cargo.toml"), manifest).expect("write the manifest");
    std::fs::create_dir(krate.path().join("src")).expect("create src");
    std::fs::copy(source.join("src/lib.rs"), krate.path().join("src/lib.rs"))
        .expect("copy the source");
    build_outside(krate.path(), args).join(plugin_api::library_file_name(name))
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
    build_workspace();
    format!(
        "[[plugin]]\npath = {:?}\n",
        plugin_path(name).display().to_string()
    )
}
