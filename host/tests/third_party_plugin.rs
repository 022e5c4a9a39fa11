//! A third party's path, as docs/writing-a-plugin.md tells it: the
//! example crate from the guide, built outside the workspace against
//! `plugin-api`, dropped into the plugins directory, listed in the config,
//! checked, started, and spoken to.

use test_support::{Conn, HostStart, build_outside, workspace_dir};

/// The fenced block of `lang` that follows the paragraph starting `marker`.
fn guide_block(readme: &str, marker: &str, lang: &str) -> String {
    let after = &readme[readme
        .find(marker)
        .unwrap_or_else(|| panic!("the guide lacks {marker:?}"))..];
    let fence = format!("```{lang}\n");
    let start = after.find(&fence).expect("code block") + fence.len();
    let len = after[start..].find("```").expect("end of code block");
    after[start..start + len].to_owned()
}

/// The value of the first `key = "value"` line of a manifest.
fn manifest_value(manifest: &str, key: &str) -> String {
    manifest
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim()
                .strip_prefix('=')?
                .trim()
                .strip_prefix('"')?
                .strip_suffix('"')
        })
        .unwrap_or_else(|| panic!("no {key} in:\n{manifest}"))
        .to_owned()
}

/// The patterns of the code's `Hook::new(r"...", ...)` calls, in order.
fn hook_patterns(code: &str) -> Vec<&str> {
    code.split(r#"Hook::new(r""#)
        .skip(1)
        .filter_map(|after| after.split_once('"').map(|(pattern, _)| pattern))
        .collect()
}

#[test]
fn the_guide_plugin_builds_drops_in_and_serves() {
    let readme = std::fs::read_to_string(workspace_dir().join("docs/writing-a-plugin.md")).unwrap();
    let manifest = guide_block(&readme, "**2. `Cargo.toml`**", "toml").replace(
        "../linehost/plugin-api",
        &workspace_dir().join("plugin-api").display().to_string(),
    );
    let code = guide_block(&readme, "**3. `src/lib.rs`**", "rust");
    let settings = guide_block(&readme, "**5. List it in `config.toml`**", "toml");

    let krate = tempfile::tempdir().unwrap();
    std::fs::create_dir(krate.path().join("src")).unwrap();
    std::fs::write(krate.path().join("Cargo.toml"), &manifest).unwrap();
    std::fs::write(krate.path().join("src/lib.rs"), &code).unwrap();
    let built = build_outside(krate.path(), &[]);

    // A host directory with the library dropped in, as step 4 says.
    let prepared = || {
        let start = HostStart::new().config(format!("server_name = \"testhost\"\n{settings}"));
        std::fs::create_dir(start.dir().join("plugins.d")).unwrap();
        std::fs::copy(
            built.join("libgreeter.so"),
            start.dir().join("plugins.d/libgreeter.so"),
        )
        .unwrap();
        start
    };

    // Checked: `--check` lists the plugin, then its hooks in the order the
    // code declares them.
    let check = prepared().arg("--check").run();
    assert!(check.status.success(), "{}", check.stderr);
    let version = manifest_value(&manifest, "version");
    let listed = format!("  1. greeter {version} (");
    let mut rest = &check.stdout[check
        .stdout
        .find(&listed)
        .unwrap_or_else(|| panic!("no {listed:?} in:\n{}", check.stdout))..];
    let patterns = hook_patterns(&code);
    assert_eq!(patterns.len(), 2, "{patterns:?}");
    for (n, pattern) in patterns.iter().enumerate() {
        let line = format!("{:>4}  {pattern}\n", n + 1);
        let at = rest
            .find(&line)
            .unwrap_or_else(|| panic!("no hook {line:?} in:\n{}", check.stdout));
        rest = &rest[at + line.len()..];
    }

    // Started, and spoken to.
    let host = prepared().spawn();
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("GREET Ada"), "MSG Hello Ada, from testhost");
    assert_eq!(c.ask("SHOUT quiet please"), "MSG QUIET PLEASE");
    assert_eq!(c.ask(&format!("SHOUT {}", "a".repeat(101))), "ERR too loud");
}
