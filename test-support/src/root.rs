//! Tests that need root: run where the tests run as root (CI does), and
//! reported by the test runner as ignored, with the reason, everywhere else.
//! Never a pass that did not check anything.
//!
//! The standard harness fixes `#[ignore]` when the test is compiled, so a
//! test file holding root-only tests runs under `libtest-mimic` instead, a
//! harness that takes the same command-line options and prints the same
//! summary, and can ignore a test when it runs. To use it:
//!
//! 1. In the package's `Cargo.toml`, turn the standard harness off for that
//!    file and depend on `libtest-mimic` (the macro below names it):
//!
//!    ```toml
//!    [[test]]
//!    name = "plugin_files"
//!    harness = false
//!
//!    [dev-dependencies]
//!    libtest-mimic = "0.8"
//!    ```
//!
//! 2. Write each test as a plain `fn name()` that panics on failure, without
//!    `#[test]`, and end the file with the list of its tests, the root-only
//!    ones apart:
//!
//!    ```ignore
//!    fn a_test_anyone_can_run() { /* ... */ }
//!
//!    fn a_file_owned_by_another_user_is_refused() {
//!        // `chown` a file to another user, such as `nobody` ...
//!    }
//!
//!    test_support::test_main! {
//!        tests: [a_test_anyone_can_run],
//!        root: [a_file_owned_by_another_user_is_refused],
//!    }
//!    ```
//!
//! `cargo test` then runs the root-only tests as root and otherwise prints
//! `test a_file_owned_by_another_user_is_refused ... ignored, needs root ...`
//! and counts them as ignored. Filters, `--list`, `--exact` and
//! `--test-threads` work as with the standard harness.

/// The reason a root-only test gives when it cannot run.
pub const NEEDS_ROOT: &str = "needs root; CI runs the tests as root";

/// True when this process runs as root (effective user id 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A user other than the one running the tests.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The unprivileged user `nobody`, who plays "another local user".
///
/// Panics if the password database has no such user.
pub fn nobody() -> User {
    // SAFETY: getpwnam takes a NUL-terminated name and returns null or a
    // pointer to static storage, read at once; the lock keeps two tests of
    // one process from overwriting that storage under each other.
    static LOOKUP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _lock = LOOKUP.lock().unwrap_or_else(|e| e.into_inner());
    unsafe {
        let entry = libc::getpwnam(c"nobody".as_ptr());
        assert!(!entry.is_null(), "no user `nobody` on this machine");
        User {
            uid: (*entry).pw_uid,
            gid: (*entry).pw_gid,
        }
    }
}

/// The `main` of a test file run under `libtest-mimic`: runs the listed
/// test functions, those under `root` only as root (see the module docs).
#[macro_export]
macro_rules! test_main {
    (tests: [$($test:ident),* $(,)?], root: [$($root:ident),* $(,)?] $(,)?) => {
        fn main() {
            let args = ::libtest_mimic::Arguments::from_args();
            let trials = vec![
                $(::libtest_mimic::Trial::test(stringify!($test), || {
                    $test();
                    Ok(())
                }),)*
                $(::libtest_mimic::Trial::ignorable_test(stringify!($root), || {
                    if !$crate::root::is_root() {
                        return Ok(::libtest_mimic::Completion::ignored_with(
                            $crate::root::NEEDS_ROOT,
                        ));
                    }
                    $root();
                    Ok(::libtest_mimic::Completion::Completed)
                }),)*
            ];
            ::libtest_mimic::run(&args, trials).exit()
        }
    };
}
