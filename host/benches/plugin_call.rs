//! The cost of calling a hook: through the ABI-stable boundary into the
//! real `libhello.so`, against the same work as a direct Rust call; and a
//! blocking hook's trip through tokio's blocking pool against an inline call.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use abi_stable::std_types::RString;
use criterion::{Criterion, criterion_group, criterion_main};
use host::dispatch::{Dispatcher, Target};

/// One `HELLO` call with buffers and a connection state of its own, as a
/// task on its own would make them.
fn hello_once(table: &Dispatcher, route: usize) -> bool {
    let mut out = RString::new();
    let mut spans = Vec::new();
    let client = common::client();
    let plugin = &table.plugins()[0].object;
    // hello keeps no state: this costs no allocation.
    let mut state = plugin.connect(&client.ffi());
    let ok = table
        .call(route, "HELLO", &mut spans, &client, &mut state, &mut out)
        .is_ok();
    plugin.disconnect(&client.ffi(), state);
    ok
}

fn plugin_call(c: &mut Criterion) {
    let (table, _runtime) = common::hello_library();
    let Target::Hook(route) = table.target("HELLO") else {
        panic!("HELLO not served");
    };
    let mut spans = Vec::new();
    let mut out = RString::new();
    let client = common::client();
    let mut state = table.plugins()[0].object.connect(&client.ffi());
    let mut group = c.benchmark_group("hook-call");
    group.bench_function("abi/libhello.so", |b| {
        b.iter(|| {
            out.clear();
            table
                .call(
                    route,
                    black_box("HELLO"),
                    &mut spans,
                    &client,
                    &mut state,
                    &mut out,
                )
                .is_ok()
        })
    });
    let greeting = String::from("MSG Hello from bench");
    let mut direct = String::new();
    group.bench_function("direct-rust", |b| {
        b.iter(|| {
            direct.clear();
            direct.push_str(black_box(&greeting));
            direct.push('\n');
            direct.len()
        })
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let table = Arc::new(table);
    group.bench_function("inline-in-task", |b| {
        b.to_async(&runtime).iter(|| {
            let table = Arc::clone(&table);
            async move { hello_once(&table, route) }
        })
    });
    group.bench_function("spawn-blocking", |b| {
        b.to_async(&runtime).iter(|| {
            let table = Arc::clone(&table);
            async move {
                tokio::task::spawn_blocking(move || hello_once(&table, route))
                    .await
                    .unwrap()
            }
        })
    });
    group.finish();
}

criterion_group!(benches, plugin_call);
criterion_main!(benches);
