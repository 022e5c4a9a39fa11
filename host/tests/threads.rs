//! Serving threads: a lightly loaded host keeps its connections on one
//! thread, and gives new ones to the other threads once that one is busy.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::{Conn, HostProcess, HostStart, plugin_entry};

fn host() -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"threads\"\nworker_threads = 2\n{}",
            plugin_entry("hello")
        ))
        .spawn()
}

/// The serving thread of each connection, from the `connected` log lines.
fn threads_of_connections(log: &str) -> Vec<usize> {
    log.lines()
        .filter(|l| l.contains(" connected "))
        .filter_map(|l| l.split("thread=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Keeps `conn` busy with pipelined HELLOs until `stop`, as a load would.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut writer = stream.try_clone().expect("clone");
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).expect("greeting");
        let batch = "HELLO\n".repeat(64);
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
            if writer.write_all(batch.as_bytes()).is_err() {
                return;
            }
            for _ in 0..64 {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
            }
        }
    })
}

#[test]
fn a_lightly_loaded_host_keeps_its_connections_on_one_thread() {
    let host = host();
    for _ in 0..20 {
        let (mut c, _) = Conn::open(host.addr());
        assert_eq!(c.ask("HELLO"), "MSG Hello from threads");
    }
    let log = host.stderr();
    let threads = threads_of_connections(&log);
    assert_eq!(threads.len(), 20, "{log}");
    assert!(threads.iter().all(|&t| t == 0), "{threads:?}");
}

#[test]
fn new_connections_go_to_the_other_thread_once_the_first_is_busy() {
    let host = host();
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = (0..4)
        .map(|_| flood(host.addr(), Arc::clone(&stop)))
        .collect();
    // Probe with new connections until one lands on the second thread.
    let started = Instant::now();
    let mut spread = false;
    while started.elapsed() < Duration::from_secs(20) {
        let (mut c, _) = Conn::open(host.addr());
        assert_eq!(c.ask("HELLO"), "MSG Hello from threads");
        drop(c);
        if threads_of_connections(&host.stderr()).contains(&1) {
            spread = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        let _ = f.join();
    }
    assert!(
        spread,
        "no connection reached the second thread while the first was busy:\n{}",
        host.stderr()
    );
}

#[test]
fn a_hook_holding_the_first_thread_lets_the_others_accept() {
    let host = HostStart::new()
        .config(format!(
            "server_name = \"threads\"\nworker_threads = 2\n{}{}",
            plugin_entry("hello"),
            plugin_entry("crashkit")
        ))
        .spawn();
    // A quick hook earns its place inline on the first thread, where every
    // connection of a lightly loaded host is...
    let (mut first, _) = Conn::open(host.addr());
    first.make_inline("STALL 0", "MSG stalled 0", "crashkit", 4);
    // ...then holds that thread for seconds.
    first.send("STALL 3000");
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let (mut late, greeting) = Conn::open(host.addr());
    assert_eq!(greeting, "MSG Welcome aboard !");
    assert_eq!(late.ask("HELLO"), "MSG Hello from threads");
    let took = asked.elapsed();
    println!("a new connection while the first thread is held: {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(first.line(), "MSG stalled 3000");
}
