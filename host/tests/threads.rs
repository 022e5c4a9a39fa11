//! Serving threads: a lightly loaded host keeps its connections on one
//! thread; once that one is busy and a core is free, new connections go to
//! another thread and waiting ones move there; with no core free, they
//! stay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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

/// A host with two serving threads, `hello`, `crashkit` and `chat`.
fn crashkit_host() -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"threads\"\nworker_threads = 2\n{}{}{}",
            plugin_entry("hello"),
            plugin_entry("crashkit"),
            plugin_entry("chat")
        ))
        .spawn()
}

/// A chat client named `nick` in the room `lobby`.
fn member(host: &HostProcess, nick: &str) -> Conn {
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(
        c.ask(&format!("NICK {nick}")),
        format!("MSG you are {nick}")
    );
    assert!(c.ask("JOIN lobby").starts_with("MSG joined lobby"));
    c
}

/// [`crashkit_host`], with its `WORK` hook (crashkit's 8th) already running
/// inline: each call keeps a serving thread on the CPU while the client
/// that asks for it needs almost none.
fn working_host() -> HostProcess {
    let host = crashkit_host();
    make_work_inline(&host);
    host
}

fn make_work_inline(host: &HostProcess) {
    let (mut c, _) = Conn::open(host.addr());
    c.make_inline("WORK 50", "MSG worked 50", "crashkit", 8);
}

/// Asks `conn` for 8 `WORK 300` at a time until `stop`, checking every
/// reply: about 2.4 ms of a serving thread's CPU per round.
fn work(mut conn: Conn, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut rounds = 0;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(40) {
            conn.send_raw("WORK 300\n".repeat(8).as_bytes());
            for _ in 0..8 {
                assert_eq!(conn.line(), "MSG worked 300");
            }
            rounds += 1;
        }
        rounds
    })
}

/// CPU time so far of the serving process's thread named `name`, or of its
/// first thread (the first serving thread) for `None`.
fn thread_cpu(host: &HostProcess, name: Option<&str>) -> Duration {
    let pid = host.serving_pid();
    let dir = match name {
        None => format!("/proc/{pid}/task/{pid}"),
        Some(name) => std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("tasks")
            .filter_map(Result::ok)
            .map(|t| t.path().display().to_string())
            .find(|t| std::fs::read_to_string(format!("{t}/comm")).is_ok_and(|c| c.trim() == name))
            .unwrap_or_else(|| panic!("no thread {name} in {pid}")),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).expect("stat");
    let fields: Vec<u64> = stat
        .rsplit_once(") ")
        .expect("stat fields")
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime, in clock ticks of 10 ms.
    Duration::from_millis((fields[11] + fields[12]) * 10)
}

/// The share of `over` that the thread spent on a CPU, from CPU times read
/// before and after it.
fn share(before: Duration, after: Duration, over: Duration) -> f64 {
    after.saturating_sub(before).as_secs_f64() / over.as_secs_f64()
}

/// Keeps `threads` threads of this process on the CPU until `stop`: the
/// machine has no core to spare.
fn hog(threads: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(40) {
                    std::hint::black_box(0u64);
                }
            })
        })
        .collect()
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

/// Tests that load the CPU run one at a time: each needs to know whether a
/// core is free.
static CPU_LOAD: Mutex<()> = Mutex::new(());

fn cpu_load() -> MutexGuard<'static, ()> {
    CPU_LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

/// The log line of a move for load to thread 1, if there is one within 20 s.
fn wait_for_move(host: &HostProcess) -> Option<String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let moved = host
            .stderr()
            .lines()
            .find(|l| l.contains("is busy and a core is free") && l.contains("to=1"))
            .map(str::to_owned);
        if moved.is_some() {
            return moved;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn waiting_connections_move_off_a_busy_thread_when_a_core_is_free() {
    let _one_at_a_time = cpu_load();
    let host = working_host();
    // Opened while the host is idle: all on the first thread. Chat members
    // wait for lines pushed to them, wherever they end up.
    let conns: Vec<Conn> = (0..6).map(|_| Conn::open(host.addr()).0).collect();
    let mut members: Vec<Conn> = (0..6).map(|i| member(&host, &format!("m{i}"))).collect();
    assert!(
        threads_of_connections(&host.stderr())
            .iter()
            .all(|&t| t == 0),
        "{}",
        host.stderr()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = conns
        .into_iter()
        .map(|c| work(c, Arc::clone(&stop)))
        .collect();
    // The client needs little CPU, so the other core is free: some of the
    // connections move to the second thread...
    let moved = wait_for_move(&host);
    // ...which serves them from then on.
    let before = thread_cpu(&host, Some("serve-1"));
    let over = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let second = share(before, thread_cpu(&host, Some("serve-1")), over.elapsed());
    // Every member hears every line, once and in order, whichever thread
    // serves it now.
    let mut speaker = member(&host, "speaker");
    for n in 0..20 {
        assert_eq!(speaker.ask(&format!("SAY line {n}")), "MSG said to 6");
    }
    for m in &mut members {
        let mut heard = Vec::new();
        while heard.len() < 20 {
            let line = m.pushed();
            // Others joining the room are told too.
            if !line.starts_with("lobby * ") {
                heard.push(line);
            }
        }
        let said: Vec<_> = (0..20)
            .map(|n| format!("lobby speaker: line {n}"))
            .collect();
        assert_eq!(heard, said);
    }
    stop.store(true, Ordering::Relaxed);
    let rounds: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    println!("{moved:?}; second thread on the CPU {second:.2} of the time; {rounds} rounds");
    // Logged only when some moved.
    assert!(moved.is_some(), "no connection moved:\n{}", host.stderr());
    assert!(second > 0.25, "the second thread served {second:.2}");
}

#[test]
fn new_connections_go_to_another_thread_while_the_first_is_busy_and_a_core_free() {
    let _one_at_a_time = cpu_load();
    let host = working_host();
    // One connection keeps the first thread busy; it cannot be split, so
    // it stays, and the other core stays free.
    let stop = Arc::new(AtomicBool::new(false));
    let worker = work(Conn::open(host.addr()).0, Arc::clone(&stop));
    let started = Instant::now();
    let mut on_second = false;
    let mut probes = 0;
    while !on_second && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
        let (mut c, _) = Conn::open(host.addr());
        assert_eq!(c.ask("HELLO"), "MSG Hello from threads");
        probes += 1;
        on_second = threads_of_connections(&host.stderr()).contains(&1);
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker");
    println!("{probes} probes");
    assert!(
        on_second,
        "no new connection reached the second thread:\n{}",
        host.stderr()
    );
}

#[test]
fn a_busy_thread_with_no_core_free_keeps_its_connections() {
    let _one_at_a_time = cpu_load();
    // The balancer says, at trace level, what it saw when it kept them.
    let host = HostStart::new()
        .config(format!(
            "server_name = \"threads\"\nworker_threads = 2\n{}{}",
            plugin_entry("hello"),
            plugin_entry("crashkit")
        ))
        .arg("--log-level")
        .arg("info,host::balance=trace")
        .spawn();
    make_work_inline(&host);
    let conns: Vec<Conn> = (0..6).map(|_| Conn::open(host.addr()).0).collect();
    let stop = Arc::new(AtomicBool::new(false));
    // Every other core is taken: another serving thread would only take
    // turns on a core with the first.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hogs = hog(cores.saturating_sub(1), Arc::clone(&stop));
    let workers: Vec<_> = conns
        .into_iter()
        .map(|c| work(c, Arc::clone(&stop)))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = thread_cpu(&host, None);
    let over = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let first = share(before, thread_cpu(&host, None), over.elapsed());
    let log = host.stderr();
    // A new connection stays on the first thread too.
    let (mut c, _) = Conn::open(host.addr());
    assert_eq!(c.ask("HELLO"), "MSG Hello from threads");
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    for h in hogs {
        h.join().expect("hog");
    }
    println!("first thread on the CPU {first:.2} of the time");
    assert!(!log.contains("a core is free"), "{log}");
    let threads = threads_of_connections(&host.stderr());
    assert!(threads.iter().all(|&t| t == 0), "{threads:?}");
    // It did see the first thread busy enough that, with a core free, its
    // connections would have moved.
    let kept = log
        .lines()
        .find(|l| l.contains("a serving thread is busy; its connections stay"));
    println!("{kept:?}");
    assert!(
        kept.is_some(),
        "the first thread was never that busy:\n{log}"
    );
}

#[test]
fn a_hook_holding_the_first_thread_lets_the_others_accept() {
    let host = crashkit_host();
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
