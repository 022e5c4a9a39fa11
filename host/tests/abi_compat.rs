//! plugin-api's compatibility rule (its crate docs), built and loaded.
//!
//! A later 0.2.x may append a field to the root module and a method with a
//! default body to the plugin object. A copy of `plugin-api` patched that
//! way stands for it: `hello` built against the copy loads and serves in
//! today's host, and a host built against the copy loads and serves today's
//! plugins, reading the appended field as missing and running the appended
//! method's default body. A plugin built against the next minor version is
//! refused in one line.
//!
//! Each direction is one cargo build outside the workspace (the second a
//! whole host), in the target directory such builds share.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use test_support::{Conn, HostStart, build_outside, plugin_entry, workspace_dir};

/// Builds outside the workspace share a target directory, where each
/// `hello` lands as `libhello.so`: one build at a time, its library copied
/// away before the next.
static BUILDS: Mutex<()> = Mutex::new(());

/// Copies everything below `from` to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A workspace in a temporary directory with `members` whose sources are
/// copied from this one (`copied`: each member's files and directories to
/// copy), and this workspace's package settings and dependencies.
fn workspace_of(members: &[(&str, &[&str])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (member, copied) in members {
        for item in *copied {
            let from = workspace_dir().join(member).join(item);
            let to = dir.path().join(member).join(item);
            if from.is_dir() {
                copy_tree(&from, &to);
            } else {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&from, &to).unwrap();
            }
        }
    }
    let mut manifest = read_toml(&workspace_dir().join("Cargo.toml"));
    let workspace = manifest["workspace"].as_table_mut().unwrap();
    let names = members.iter().map(|(m, _)| toml::Value::from(*m)).collect();
    workspace.insert("members".into(), toml::Value::Array(names));
    workspace.remove("exclude");
    write_toml(&dir.path().join("Cargo.toml"), &manifest);
    dir
}

fn read_toml(path: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_toml(path: &Path, table: &toml::Table) {
    std::fs::write(path, toml::to_string(table).unwrap()).unwrap();
}

/// This workspace's plugin-api version, as (major, minor, patch).
fn api_version() -> (u64, u64, u64) {
    let manifest = read_toml(&workspace_dir().join("plugin-api/Cargo.toml"));
    let version = manifest["package"]["version"].as_str().unwrap();
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap());
    let mut next = || parts.next().unwrap();
    (next(), next(), next())
}

/// Gives the copy of plugin-api in `workspace` the version `version`.
fn set_api_version(workspace: &Path, version: String) {
    let path = workspace.join("plugin-api/Cargo.toml");
    let mut manifest = read_toml(&path);
    manifest["package"]["version"] = toml::Value::String(version);
    write_toml(&path, &manifest);
}

/// Inserts `addition` into the file `file` of `workspace`, just before the
/// first `before` that follows `after`.
fn insert(workspace: &Path, file: &str, after: &str, before: &str, addition: &str) {
    let path = workspace.join(file);
    let mut text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("{file} no longer has {after:?}: update this test"));
    let at = start
        + text[start..]
            .find(before)
            .unwrap_or_else(|| panic!("no {before:?} after {after:?} in {file}"));
    text.insert_str(at, addition);
    std::fs::write(&path, text).unwrap();
}

/// What a later 0.2.x may append, as the crate docs say: a field to
/// `PluginRoot` after its last one (set by `export_plugin!`'s root module),
/// and a method with a default body to `PluginObject` after its last one.
fn append_to_the_abi(workspace: &Path) {
    insert(
        workspace,
        "plugin-api/src/abi.rs",
        "pub struct PluginRoot {",
        "\n}\n",
        "\n    /// Appended by a later 0.2.x.\n    pub appended: u64,",
    );
    insert(
        workspace,
        "plugin-api/src/abi.rs",
        "pub trait PluginObject",
        "\n}\n",
        "\n\n    /// Appended by a later 0.2.x.\n    fn appended(&self) -> u64 {\n        0\n    }",
    );
    insert(
        workspace,
        "plugin-api/src/export.rs",
        "fn root_module<E: Export>()",
        "\n    }\n",
        "\n        appended: 1,",
    );
}

/// Builds the `hello` of `workspace`; returns its library, copied to `dir`.
fn build_hello(workspace: &Path, dir: &Path) -> PathBuf {
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let built = build_outside(workspace, &["-p", "hello"]);
    let library = dir.join("libhello.so");
    std::fs::copy(built.join("libhello.so"), &library).unwrap();
    library
}

/// `hello` built against a copy of plugin-api at `version`, appended to or not.
fn hello_against(version: String, appended: bool, dir: &Path) -> PathBuf {
    let workspace = workspace_of(&[
        ("plugin-api", &["Cargo.toml", "src"]),
        ("plugins/hello", &["Cargo.toml", "src"]),
    ]);
    set_api_version(workspace.path(), version);
    if appended {
        append_to_the_abi(workspace.path());
    }
    build_hello(workspace.path(), dir)
}

/// A host directory with `library` copied in as `name`, listed by path.
fn with_library(start: HostStart, library: &Path, name: &str) -> HostStart {
    std::fs::copy(library, start.dir().join(name)).unwrap();
    start.config(format!("[[plugin]]\npath = \"{name}\"\n"))
}

/// `--check` passes and lists `hello`; a started host answers `HELLO`.
fn checks_and_serves_hello(start: impl Fn() -> HostStart) {
    let check = start().arg("--check").run();
    assert!(check.status.success(), "{}", check.stderr);
    assert!(check.stdout.contains(". hello "), "{}", check.stdout);
    let host = start().spawn();
    let (mut c, _) = Conn::open(host.addr());
    let reply = c.ask("HELLO");
    assert!(reply.starts_with("MSG Hello from "), "{reply}");
}

#[test]
fn a_plugin_built_against_a_later_0_2_loads_in_this_host() {
    let (major, minor, patch) = api_version();
    let dir = tempfile::tempdir().unwrap();
    let library = hello_against(format!("{major}.{minor}.{}", patch + 1), true, dir.path());
    checks_and_serves_hello(|| with_library(HostStart::new(), &library, "libhello-later.so"));
}

#[test]
fn a_host_built_against_a_later_0_2_loads_todays_plugins() {
    let (major, minor, patch) = api_version();
    let workspace = workspace_of(&[
        ("plugin-api", &["Cargo.toml", "src"]),
        ("process-setup", &["Cargo.toml", "src"]),
        ("host", &["Cargo.toml", "src"]),
    ]);
    set_api_version(workspace.path(), format!("{major}.{minor}.{}", patch + 1));
    append_to_the_abi(workspace.path());
    // Only the server is built: its tests, benchmarks and their
    // dependencies stay behind.
    let host_manifest = workspace.path().join("host/Cargo.toml");
    let mut manifest = read_toml(&host_manifest);
    for key in ["dev-dependencies", "test", "bench"] {
        manifest.remove(key);
    }
    write_toml(&host_manifest, &manifest);
    // What the later host reads of an older plugin: the appended field and
    // method, which the plugin lacks, shown by `--check` after its version.
    insert(
        workspace.path(),
        "host/src/plugins/mod.rs",
        "fn start_one(",
        "\n    let mut plugin = LoadedPlugin::new(",
        "\n    let version = format!(\"{version} appended={:?}/{}\", root.appended(), object.appended());",
    );
    let dir = tempfile::tempdir().unwrap();
    let linehost = dir.path().join("linehost");
    {
        let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
        let built = build_outside(workspace.path(), &["-p", "host", "--bin", "linehost"]);
        std::fs::copy(built.join("linehost"), &linehost).unwrap();
    }
    let entries = format!("{}{}", plugin_entry("hello"), plugin_entry("time"));
    let start = || HostStart::new().binary(&linehost).config(&entries);
    checks_and_serves_hello(start);
    // The field reads as missing and the method runs its default body.
    let check = start().arg("--check").run();
    assert!(
        check.stdout.contains(" appended=None/0 "),
        "{}",
        check.stdout
    );
}

#[test]
fn a_plugin_built_against_the_next_minor_version_is_refused_in_one_line() {
    let (major, minor, patch) = api_version();
    let dir = tempfile::tempdir().unwrap();
    let library = hello_against(format!("{major}.{}.0", minor + 1), false, dir.path());
    let out = with_library(HostStart::new(), &library, "libhello-next.so")
        .arg("--check")
        .run();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.contains(" INFO "))
        .collect();
    assert_eq!(
        errors,
        [format!(
            "error: plugin `libhello-next.so` (config line 2): built against plugin-api \
             {major}.{}.0, but this host needs plugin-api {major}.{minor}.x (it has \
             {major}.{minor}.{patch}); rebuild the plugin against the host's plugin-api",
            minor + 1
        )]
    );
}
