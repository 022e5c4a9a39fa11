/// The file a plugin called `name` is built into, and where the host looks
/// for `name = "..."` in its config: `lib<name>.so` on Linux.
///
/// Cargo turns `-` into `_` in library file names, and so does this.
pub fn library_file_name(name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}
