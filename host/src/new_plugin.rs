//! `linehost new-plugin NAME [DIR]`: writes a plugin crate that builds and
//! serves as written, and says how to build, list and start it.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionNumber;
use anyhow::{Context, bail};
use plugin_api::abi::PluginRoot_Ref;

const CARGO_TOML: &str = include_str!("new_plugin/Cargo.toml.template");
const LIB_RS: &str = include_str!("new_plugin/lib.rs.template");

/// Names the generated `src/lib.rs` imports, which the plugin's type must not take.
const IMPORTED: &[&str] = &[
    "Deserialize",
    "Hook",
    "HookResult",
    "Host",
    "Plugin",
    "Reply",
    "Request",
    "Settings",
];

/// Rust keywords (a crate's library is named after it) and the crates a
/// crate cannot take the name of: cargo refuses these.
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Crates the generated crate depends on, whose names it cannot have.
const DEPENDENCIES: &[&str] = &["plugin_api", "serde"];

/// Where the generated crate gets `plugin-api` from.
pub enum ApiSource {
    /// The `plugin-api` directory this host was built from.
    BuiltFrom,
    /// The linehost repository at this git URL.
    Git(String),
}

/// Writes the crate `name` into `dir` (default `./NAME`); returns what to
/// tell the user.
pub fn run(name: &str, dir: Option<PathBuf>, source: ApiSource) -> anyhow::Result<String> {
    check_name(name).map_err(|why| {
        anyhow::anyhow!(
            "{name:?} is not a plain crate name: {why} (for example `greeter` or `kv-store`)"
        )
    })?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    refuse_to_overwrite(&dir)?;
    let dependency = dependency(&source)?;
    let type_name = type_name(name);
    let command = command(name);
    let fill = |template: &str| {
        template
            .replace("__NAME__", name)
            .replace("__TYPE__", &type_name)
            .replace("__COMMAND__", &command)
            .replace("__PLUGIN_API__", &dependency)
    };
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.join("src").display()))?;
    write_new(&dir.join("Cargo.toml"), &fill(CARGO_TOML))?;
    write_new(&dir.join("src/lib.rs"), &fill(LIB_RS))?;
    Ok(next_steps(name, &command, &dir))
}

/// A crate name cargo takes and the host's config can name: ASCII letters,
/// digits, `-` and `_`, starting with a letter.
fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty".into());
    };
    if !first.is_ascii_alphabetic() {
        return Err("it must start with a letter".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{c:?} is not allowed; use letters, digits, `-` and `_`"
        ));
    }
    if name.len() > 64 {
        return Err("it is longer than 64 characters".into());
    }
    let lib = name.replace('-', "_");
    if RESERVED.contains(&lib.as_str()) {
        return Err("cargo reserves it (a Rust keyword or a built-in crate)".into());
    }
    if DEPENDENCIES.contains(&lib.as_str()) {
        return Err("the plugin depends on a crate of that name".into());
    }
    Ok(())
}

/// The plugin's type: `kv-store` becomes `KvStore`.
fn type_name(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_']).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if IMPORTED.contains(&out.as_str()) {
        out.push_str("Plugin");
    }
    out
}

/// The command the plugin's hook answers: `kv-store` becomes `KV_STORE`.
fn command(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

fn refuse_to_overwrite(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty; name a new or empty directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if dir.exists() && !dir.is_dir() => {
            Err(e).with_context(|| format!("{} exists and is not a directory", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// The `plugin-api = ...` value of the generated manifest, held to this
/// host's `plugin-api` minor version.
fn dependency(source: &ApiSource) -> anyhow::Result<String> {
    let ours = VersionNumber::new(PluginRoot_Ref::VERSION_STRINGS)
        .context("the plugin-api version this host was built with")?;
    let version = toml_string(&format!("{}.{}", ours.major, ours.minor));
    match source {
        ApiSource::Git(url) => Ok(format!(
            "{{ git = {}, version = {version} }}",
            toml_string(url)
        )),
        ApiSource::BuiltFrom => {
            let path = built_from();
            if !path.join("Cargo.toml").is_file() {
                bail!(
                    "the plugin-api this linehost was built from, {}, is not there any more; pass \
                     --git with the URL of the linehost repository",
                    path.display()
                );
            }
            let Some(path) = path.to_str() else {
                bail!(
                    "the path of plugin-api, {}, is not UTF-8, which Cargo.toml cannot hold; pass \
                     --git with the URL of the linehost repository",
                    path.display()
                );
            };
            Ok(format!(
                "{{ path = {}, version = {version} }}",
                toml_string(path)
            ))
        }
    }
}

/// The `plugin-api` directory of the workspace this host was built in.
fn built_from() -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    host.parent().unwrap_or(host).join("plugin-api")
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Creates `path`, which must not exist yet, holding `text`.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}

fn next_steps(name: &str, command: &str, dir: &Path) -> String {
    let manifest = dir.join("Cargo.toml");
    let code = dir.join("src/lib.rs");
    let built = dir
        .join("target/release")
        .join(plugin_api::library_file_name(name));
    let (manifest, code, built) = (manifest.display(), code.display(), built.display());
    let mut out = String::new();
    let _ = write!(
        out,
        "Wrote {manifest} and {code}: the plugin `{name}`.\n\n\
         Add these lines to config.toml, among the [[plugin]] entries (earlier ones get a line \
         first):\n\n\
         [[plugin]]\n\
         name = \"{name}\"\n\
         [plugin.settings]\n\
         greeting = \"Hello\"\n\n\
         Then build it, drop it into the plugins directory, check and start the host:\n\n\
         \x20 cargo build --release --manifest-path {manifest}\n\
         \x20 cp {built} plugins.d/\n\
         \x20 linehost --check\n\
         \x20 linehost\n\
         \x20 linehost-cli -c \"{command} Ada\"    # MSG Hello Ada\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cargo_and_the_config_both_take_pass() {
        for name in ["greeter", "kv-store", "kv_store", "x2", "Chat"] {
            assert_eq!(check_name(name), Ok(()), "{name}");
        }
        for name in [
            "",
            "2fa",
            "-x",
            "my plugin",
            "a/b",
            "über",
            "fn",
            "self",
            "test",
            "std",
            "serde",
            "plugin-api",
        ] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn type_and_command_follow_the_name() {
        assert_eq!(type_name("kv-store"), "KvStore");
        assert_eq!(type_name("a__b"), "AB");
        assert_eq!(type_name("plugin"), "PluginPlugin");
        assert_eq!(command("kv-store"), "KV_STORE");
    }
}
