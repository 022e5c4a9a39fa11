//! Start-up errors say what is wrong in words the operator can act on,
//! and never print a path or a plugin's text raw to the terminal.

use std::path::Path;

use test_support::{
    HostStart, build_outside, build_workspace, plugin_entry, plugin_path, workspace_dir,
};

/// Runs `--check`, which must fail; returns the error lines (a start may
/// also log, say, the removal of a dead host's copies).
fn fails(start: HostStart) -> Vec<String> {
    let out = start.arg("--check").run();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    out.stderr
        .lines()
        .filter(|l| !l.contains(" INFO "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_directory_fifo_or_device_as_plugin_says_what_it_is() {
    let start = HostStart::new();
    let dir = start.dir().to_path_buf();
    std::fs::create_dir(dir.join("adir.so")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("fifo.so").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `fifo` is a valid NUL-terminated string for the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::create_dir_all(dir.join("plugins.d/libbyname.so")).unwrap();
    let out = fails(start.config(
        "[[plugin]]\npath = \"adir.so\"\n[[plugin]]\npath = \"fifo.so\"\n\
         [[plugin]]\npath = \"/dev/null\"\n[[plugin]]\nname = \"byname\"\n",
    ));
    let expected = [
        format!(
            "error: plugin `adir.so` (config line 2): {}/adir.so is a directory, not a library file",
            dir.display()
        ),
        format!(
            "error: plugin `fifo.so` (config line 4): {}/fifo.so is a named pipe (FIFO), not a \
             library file",
            dir.display()
        ),
        "error: plugin `/dev/null` (config line 6): /dev/null is a character device, not a \
         library file"
            .to_owned(),
        format!(
            "error: plugin `byname` (config line 8): {}/plugins.d/libbyname.so is a directory, \
             not a library file",
            dir.display()
        ),
    ];
    assert_eq!(out, expected);
}

#[test]
fn control_characters_in_paths_are_escaped() {
    let start = HostStart::new();
    let dir = start.dir().to_path_buf();
    // A garbage "library" whose name would retitle the terminal and beep.
    std::fs::write(dir.join("evil\x1b]0;pwned\x07.so"), b"not a library").unwrap();
    let out = fails(start.config(
        "[[plugin]]\npath = \"evil\\u001b]0;pwned\\u0007.so\"\n\
         [[plugin]]\npath = \"gone\\u001b[2J.so\"\n",
    ))
    .join("\n");
    assert!(
        !out.contains(['\x1b', '\x07']),
        "raw control characters: {out:?}"
    );
    let evil = format!("{}/evil\\u{{1b}}]0;pwned\\u{{7}}.so", dir.display());
    assert!(
        out.contains(&format!(
            "error: plugin `evil\\u{{1b}}]0;pwned\\u{{7}}.so` (config line 2): not a loadable \
             dynamic library: {evil}: "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "error: plugin `gone\\u{{1b}}[2J.so` (config line 4): library not found; looked for \
             {}/gone\\u{{1b}}[2J.so",
            dir.display()
        )),
        "{out}"
    );
}

#[test]
fn a_library_file_name_as_plugin_name_gets_the_plain_name_suggested() {
    let out = fails(HostStart::new().config("[[plugin]]\nname = \"libkv.so\"\n"));
    assert_eq!(
        out,
        [
            "error: config.toml:2:8: plugin name \"libkv.so\" is not a plain name (letters, digits, \
         `-`, `_`); write `name = \"kv\"`: the host adds `lib` and `.so` itself"
        ]
    );
}

#[test]
fn a_pattern_too_large_says_so_and_which_limit() {
    let out = fails(HostStart::new().config(format!(
        "{}[plugin.settings]\nextra_pattern = \"a{{1000000}}\"\n",
        plugin_entry("testkit")
    )));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].ends_with("(config line 2): hook 1 has an invalid pattern \"a{1000000}\":"),
        "{out:?}"
    );
    assert_eq!(
        out[1],
        "    the pattern is too large: compiled, it would pass the regex engine's size limit of \
         10 MiB; use smaller repetition counts (`{1000}`, not `{1000000}`) or fewer alternatives"
    );
}

/// Copies the files of `from` (one level of directories deep) to `to`.
fn copy_crate(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("src")).unwrap();
    std::fs::copy(from.join("Cargo.toml"), to.join("Cargo.toml")).unwrap();
    for entry in std::fs::read_dir(from.join("src")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join("src").join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_plugin_built_against_another_plugin_api_says_both_versions_in_one_line() {
    // What the author of a plugin built against plugin-api 0.1 gets: the
    // real plugin-api, as version 0.1.0, and hello built against it. The
    // version is checked before any layout, so the 0.1 layout is not needed.
    let krate = tempfile::tempdir().unwrap();
    copy_crate(
        &workspace_dir().join("plugin-api"),
        &krate.path().join("plugin-api"),
    );
    let api_manifest = krate.path().join("plugin-api/Cargo.toml");
    let ours = format!("version = \"{}\"", plugin_api_version());
    let text = std::fs::read_to_string(&api_manifest).unwrap();
    assert!(text.contains(&ours), "{text}");
    std::fs::write(&api_manifest, text.replace(&ours, "version = \"0.1.0\"")).unwrap();
    copy_crate(
        &workspace_dir().join("plugins/hello"),
        &krate.path().join("hello"),
    );
    let manifest = std::fs::read_to_string(workspace_dir().join("Cargo.toml")).unwrap();
    let dependencies = &manifest[manifest.find("[workspace.dependencies]").unwrap()..];
    let dependencies = &dependencies[..dependencies
        .find("\n[profile")
        .unwrap_or(dependencies.len())];
    std::fs::write(
        krate.path().join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [\"plugin-api\", \"hello\"]\n\
             [workspace.package]\nversion = \"0.2.0\"\nedition = \"2024\"\n\
             license = \"Apache-2.0\"\npublish = false\n{dependencies}\n"
        ),
    )
    .unwrap();
    let built = build_outside(krate.path(), &["-p", "hello"]);

    let start = HostStart::new();
    std::fs::copy(
        built.join("libhello.so"),
        start.dir().join("libhello-0.1.so"),
    )
    .unwrap();
    let out = fails(start.config("[[plugin]]\npath = \"libhello-0.1.so\"\n"));
    let ours = plugin_api_version();
    let series = ours.rsplit_once('.').unwrap().0;
    assert_eq!(
        out,
        [format!(
            "error: plugin `libhello-0.1.so` (config line 2): built against plugin-api 0.1.0, but \
             this host needs plugin-api {series}.x (it has {ours}); rebuild the plugin against \
             the host's plugin-api"
        )]
    );
    // The same host loads the same plugin built against its own plugin-api.
    build_workspace();
    let ok = HostStart::new()
        .config(plugin_entry("hello"))
        .arg("--check")
        .run();
    assert!(ok.status.success(), "{}", ok.stderr);
    assert!(plugin_path("hello").exists());
}

/// The version of the workspace's plugin-api, from its manifest.
fn plugin_api_version() -> String {
    let text = std::fs::read_to_string(workspace_dir().join("plugin-api/Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["package"]["version"].as_str().unwrap().to_owned()
}
