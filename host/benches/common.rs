//! Building dispatch tables for the benchmarks.

#![allow(dead_code)]

use abi_stable::std_types::RStr;
use host::config::Config;
use host::dispatch::Dispatcher;
use host::host_services::HostServices;
use host::plugins::{LoadedPlugin, RuntimeDir, load_all};
use host::session::ClientInfo;
use plugin_api::abi::HostInfo;

/// A table of exactly `hooks` hooks (`NOOP0` ..), served in process by
/// `testkit` through the same ABI glue as a loaded library.
pub fn noop_table(hooks: usize) -> Dispatcher {
    let info = HostInfo {
        server_name: RStr::from_str("bench"),
        host_version: RStr::from_str("0"),
        host: HostServices::detached().to_box(),
    };
    let settings = format!("extra_hooks = {hooks}\nextra_only = true\n");
    let object = plugin_api::instantiate::<testkit::Testkit>(&settings, &info).expect("testkit");
    let plugin = LoadedPlugin::new("testkit".into(), "0".into(), "in-process".into(), object)
        .expect("patterns");
    Dispatcher::new(vec![plugin]).expect("table")
}

/// A table with the real `libhello.so`, loaded as the host loads it.
pub fn hello_library() -> (Dispatcher, RuntimeDir) {
    test_support::build_workspace();
    let text = format!(
        "server_name = \"bench\"\n[[plugin]]\npath = {:?}\n",
        test_support::plugin_path("hello").display().to_string()
    );
    let config = Config::parse(std::path::Path::new("bench.toml"), &text).expect("config");
    let runtime = RuntimeDir::create().expect("runtime dir");
    let report = load_all(&config, &runtime, &HostServices::detached());
    assert!(report.errors.is_empty(), "{}", report.errors[0]);
    (Dispatcher::new(report.plugins).expect("table"), runtime)
}

/// A connection as plugins see it, for calling hooks directly.
pub fn client() -> ClientInfo {
    ClientInfo {
        id: 1,
        peer: "127.0.0.1:1".into(),
        tls_subject: None,
    }
}
