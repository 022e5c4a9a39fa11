//! Every way start-up can fail says so in one clear line naming the
//! plugin and file, and exits non-zero; `--check` reports what would run.

use test_support::{HostStart, build_workspace, plugin_entry, plugin_path};

fn fails_with(start: HostStart, expected: &[&str]) -> String {
    let out = start.run();
    assert!(
        !out.status.success(),
        "host should have failed:\n{}",
        out.stderr
    );
    for e in expected {
        assert!(out.stderr.contains(e), "missing {e:?} in:\n{}", out.stderr);
    }
    out.stderr
}

#[test]
fn check_lists_plugins_and_hooks_in_dispatch_order() {
    let out = HostStart::new()
        .config(format!("{}{}", plugin_entry("time"), plugin_entry("hello")))
        .arg("--check")
        .run();
    assert!(out.status.success(), "{}", out.stderr);
    // The bundled plugins carry the workspace's version, as the host does.
    let version = env!("CARGO_PKG_VERSION");
    let time = out
        .stdout
        .find(&format!("1. time {version} ("))
        .expect(&out.stdout);
    let hello = out
        .stdout
        .find(&format!("2. hello {version} ("))
        .expect(&out.stdout);
    assert!(time < hello);
    assert!(out.stdout.contains("TIME") && out.stdout.contains("HELLO"));
}

#[test]
fn missing_file_says_where_it_looked() {
    let start = HostStart::new().config("[[plugin]]\nname = \"nosuch\"\n");
    let dir = start.dir().display().to_string();
    fails_with(
        start,
        &[
            "error: plugin `nosuch` (config line 2): library not found; looked for ",
            &format!("{dir}/plugins.d/libnosuch.so"),
        ],
    );
}

#[test]
fn a_garbage_file_is_not_a_library() {
    let start = HostStart::new().config("[[plugin]]\nname = \"junk\"\n");
    std::fs::create_dir(start.dir().join("plugins.d")).unwrap();
    let junk = start.dir().join("plugins.d/libjunk.so");
    std::fs::write(&junk, b"this is not an ELF file at all").unwrap();
    fails_with(
        start,
        &[&format!(
            "plugin `junk` (config line 2, {}): not a loadable dynamic library",
            junk.display()
        )],
    );
}

#[test]
fn a_library_without_root_module_is_not_a_plugin() {
    build_workspace();
    fails_with(
        HostStart::new().config(plugin_entry("noroot")),
        &["libnoroot.so` (config line 2): not a plugin: the library exports no plugin root module"],
    );
}

#[test]
fn an_incompatible_plugin_api_is_refused_briefly() {
    let stderr = fails_with(
        HostStart::new().config(plugin_entry("incompatible")),
        &[
            "libincompatible.so` (config line 2): built against an incompatible plugin-api",
            "    Error: mismatched package\n    Expected: plugin-api\n    Found: incompatible",
        ],
    );
    assert!(
        stderr.lines().count() < 20,
        "the layout report must be summarised:\n{stderr}"
    );
    // The full report is there at debug level.
    let verbose = HostStart::new()
        .config(plugin_entry("incompatible"))
        .arg("--log-level=debug")
        .run();
    assert!(
        verbose.stderr.contains("full layout report"),
        "{}",
        verbose.stderr
    );
}

#[test]
fn an_invalid_hook_pattern_names_plugin_hook_and_pattern() {
    fails_with(
        HostStart::new().config(format!(
            "{}[plugin.settings]\nextra_pattern = \"ECHO (\"\n",
            plugin_entry("testkit")
        )),
        &[
            "libtestkit.so` (config line 2): hook 1 has an invalid pattern \"ECHO (\"",
            "unclosed group",
        ],
    );
}

#[test]
fn init_rejecting_settings_names_the_plugin() {
    fails_with(
        HostStart::new().config(format!(
            "{}[plugin.settings]\nformat = \"%Q\"\n",
            plugin_entry("time")
        )),
        &["libtime.so` (config line 2): plugin `time` refused to start: invalid `format` \"%Q\""],
    );
    fails_with(
        HostStart::new().config(format!(
            "{}[plugin.settings]\nfromat = \"%H\"\n",
            plugin_entry("time")
        )),
        &["plugin `time` refused to start: invalid settings: unknown field `fromat`"],
    );
}

#[test]
fn a_panic_while_starting_is_reported_not_fatal_to_the_process() {
    fails_with(
        HostStart::new().config(format!(
            "{}[plugin.settings]\npanic_init = true\n",
            plugin_entry("testkit")
        )),
        &["refused to start: panicked while starting: testkit was told to panic while starting"],
    );
}

#[test]
fn the_same_plugin_listed_twice() {
    let entry = plugin_entry("hello");
    fails_with(
        HostStart::new().config(format!("{entry}\n{entry}")),
        &[
            "config.toml:5:8: plugin `",
            "is listed twice (first on line 2)",
        ],
    );
}

#[test]
fn two_libraries_with_the_same_plugin_name() {
    let start = HostStart::new();
    let copy = start.dir().join("hello-copy.so");
    std::fs::copy(plugin_path("hello"), &copy).unwrap();
    fails_with(
        start.config(format!(
            "{}[[plugin]]\npath = \"hello-copy.so\"\n",
            plugin_entry("hello")
        )),
        &["plugin `hello-copy.so` (config line 4): another loaded library is also named `hello`"],
    );
}

#[test]
fn an_unknown_config_key_names_line_and_key() {
    fails_with(
        HostStart::new().config(format!(
            "server_name = \"x\"\nmax_lines = 3\n{}",
            plugin_entry("hello")
        )),
        &["error: config.toml:2:1: unknown field `max_lines`, expected one of"],
    );
}

#[test]
fn a_toml_syntax_error_has_line_and_column() {
    fails_with(
        HostStart::new().config("server_name = \"x\"\n[[plugin]\nname = \"hello\"\n"),
        &["error: config.toml:2:"],
    );
}

#[test]
fn a_missing_config_file_is_named() {
    fails_with(
        HostStart::new().arg("--config").arg("nowhere.toml"),
        &["error: cannot read nowhere.toml: No such file or directory"],
    );
}
