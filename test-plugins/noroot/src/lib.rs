//! A dynamic library with an exported function but no plugin root module,
//! used to test the host's error for such a file.

#[unsafe(no_mangle)]
pub extern "C" fn noroot_answer() -> u32 {
    42
}
