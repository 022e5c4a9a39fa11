//! Containment: a plugin hook that stalls, spins, runs past its time limit,
//! floods its plugin's share of the blocking threads, aborts, overflows its
//! stack or segfaults costs at most its own call and the connections of the
//! serving process it crashed, never the service. Driven over real sockets
//! with the `crashkit` and `abortpanic` test plugins.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use test_support::{
    Conn, HostProcess, HostStart, WAIT, build_test_plugin, copy_dirs, plugin_entry, wait_until,
};

const GREETING: &str = "MSG Welcome aboard !";
const HELLO_REPLY: &str = "MSG Hello from h";

/// Connections that keep asking while a hook misbehaves.
const BYSTANDERS: usize = 10;

/// The slowest reply a bystander may get while another connection's hook
/// stalls: far above the few milliseconds expected, far below the stall.
const BYSTANDER_BOUND: Duration = Duration::from_millis(500);

/// How long a stalling or spinning call lasts.
const STALL_MS: u64 = 3000;

/// A host serving `hello` and then `crashkit` (with `crashkit_keys` in its
/// `[[plugin]]` entry), with the global `keys`, and its private copies in
/// `runtime`, a directory of the test's.
fn crashkit_host(runtime: &Path, keys: &str, crashkit_keys: &str) -> HostProcess {
    HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{keys}\n{}{}{crashkit_keys}\n",
            plugin_entry("hello"),
            plugin_entry("crashkit")
        ))
        .env("XDG_RUNTIME_DIR", runtime.display().to_string())
        .env("TMPDIR", runtime.display().to_string())
        .spawn()
}

/// The first line of the host's log that holds every one of `words`.
fn log_line(host: &HostProcess, words: &[&str]) -> Option<String> {
    host.stderr()
        .lines()
        .find(|l| words.iter().all(|w| l.contains(w)))
        .map(str::to_owned)
}

/// Waits until the log has a line holding every one of `words`; fails the
/// test with the log otherwise.
fn wait_for_log(host: &HostProcess, words: &[&str]) -> String {
    let mut found = None;
    wait_until(WAIT, || {
        found = log_line(host, words);
        found.is_some()
    });
    found.unwrap_or_else(|| {
        panic!(
            "no log line with all of {words:?} within {WAIT:?}:\n{}",
            host.stderr()
        )
    })
}

/// The median and the largest of `samples`.
fn p50_max(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1])
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `misbehave` on one connection while [`BYSTANDERS`] other
/// connections, opened and greeted before, ask `HELLO` and `OK` in turn,
/// about every 5 ms, until it returns. Returns what it returned and every
/// bystander reply's latency.
fn with_bystanders<T>(addr: SocketAddr, misbehave: impl FnOnce() -> T) -> (T, Vec<Duration>) {
    let done = AtomicBool::new(false);
    let samples = Mutex::new(Vec::new());
    let ready = Barrier::new(BYSTANDERS + 1);
    let result = std::thread::scope(|s| {
        for _ in 0..BYSTANDERS {
            s.spawn(|| {
                let (mut c, greeting) = Conn::open(addr);
                assert_eq!(greeting, GREETING);
                assert_eq!(c.ask("OK"), "MSG ok");
                ready.wait();
                let mut mine = Vec::new();
                let start = Instant::now();
                // Bounded in count and time as well as by `done`.
                for turn in 0..10_000 {
                    if done.load(Ordering::Relaxed) || start.elapsed() > WAIT {
                        break;
                    }
                    let (line, expected) = if turn % 2 == 0 {
                        ("HELLO", HELLO_REPLY)
                    } else {
                        ("OK", "MSG ok")
                    };
                    let asked = Instant::now();
                    assert_eq!(c.ask(line), expected);
                    mine.push(asked.elapsed());
                    std::thread::sleep(Duration::from_millis(5));
                }
                samples.lock().unwrap().extend(mine);
            });
        }
        ready.wait();
        // Set however `misbehave` ends, so that a failing test does not
        // leave the bystanders asking until their own limit.
        let _stop = StopOnDrop(&done);
        misbehave()
    });
    (result, samples.into_inner().unwrap())
}

/// Asserts that no bystander waited past [`BYSTANDER_BOUND`], and prints
/// the figures.
fn assert_bystanders_served(what: &str, mut samples: Vec<Duration>) {
    assert!(
        samples.len() >= BYSTANDERS,
        "only {} replies",
        samples.len()
    );
    let (p50, max) = p50_max(&mut samples);
    println!(
        "{what}: {} bystander replies, p50 {p50:?}, max {max:?}",
        samples.len()
    );
    assert!(
        max <= BYSTANDER_BOUND,
        "{what}: a bystander waited {max:?} (p50 {p50:?})"
    );
}

/// Sends `request` (a `STALL` or `SPIN` of [`STALL_MS`]) on its own
/// connection while bystanders ask; checks that they and a new connection
/// are served meanwhile, and that the log names the plugin and the hook
/// once the call has run for a second. `keys` go into the config.
fn a_hook_holding_its_thread_holds_no_one_else(keys: &str, request: &str, reply: &str, hook: &str) {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), keys, "");
    let addr = host.addr();
    let (mut stuck, _) = Conn::open(addr);
    let what = format!("{request} ({keys:?})");
    let ((newcomer, took), samples) = with_bystanders(addr, || {
        let sent = Instant::now();
        stuck.send(request);
        // The watchdog reports a call past 1 s; the call then has 2 s to go.
        let line = wait_for_log(&host, &["hook still running", "crashkit", hook]);
        println!("{what}: logged {line:?}");
        let (mut c, greeting) = Conn::open(addr);
        assert_eq!(greeting, GREETING);
        assert_eq!(c.ask("HELLO"), HELLO_REPLY);
        let newcomer = sent.elapsed();
        assert_eq!(stuck.line(), reply);
        (newcomer, sent.elapsed())
    });
    println!("{what}: new connection served {newcomer:?} after the request, which took {took:?}");
    assert_bystanders_served(&what, samples);
    assert!(
        newcomer < Duration::from_millis(STALL_MS),
        "the new connection was served {newcomer:?} after the {request}, not during it"
    );
}

// Each is run with one serving thread, which every connection shares, so
// that a hold-up of the stalled call's thread is seen by every bystander,
// and with the default config, which users run.

#[test]
fn a_stalling_hook_holds_up_no_other_connection() {
    for keys in ["worker_threads = 1", ""] {
        a_hook_holding_its_thread_holds_no_one_else(
            keys,
            "STALL 3000",
            "MSG stalled 3000",
            "STALL",
        );
    }
}

#[test]
fn a_spinning_hook_holds_up_no_other_connection() {
    for keys in ["worker_threads = 1", ""] {
        a_hook_holding_its_thread_holds_no_one_else(keys, "SPIN 3000", "MSG spun 3000", "SPIN");
    }
}

#[test]
fn a_fast_hook_that_starts_stalling_holds_up_no_other_connection() {
    for keys in ["worker_threads = 1", ""] {
        a_fast_hook_that_starts_stalling(keys);
    }
}

/// A hook that has earned its place on the serving threads, then stalls:
/// the waiting connections of its thread move to another, and the hook to
/// blocking threads.
fn a_fast_hook_that_starts_stalling(keys: &str) {
    let runtime = tempfile::tempdir().unwrap();
    let mut host = crashkit_host(runtime.path(), keys, "");
    let addr = host.addr();
    let (mut stuck, _) = Conn::open(addr);
    // Fast calls earn the hook a place on the serving threads...
    stuck.make_inline("STALL 0", "MSG stalled 0", "crashkit", 4);
    // ...until one call stalls: it holds its thread, whose other
    // connections (every bystander: they share the first thread) move,
    // and another thread accepts new ones meanwhile.
    let what = format!("first STALL 1500 of an inline hook ({keys:?})");
    let (newcomer, first) = with_bystanders(addr, || {
        let sent = Instant::now();
        stuck.send("STALL 1500");
        std::thread::sleep(Duration::from_millis(300));
        let (mut c, greeting) = Conn::open(addr);
        assert_eq!(greeting, GREETING);
        assert_eq!(c.ask("HELLO"), HELLO_REPLY);
        let newcomer = sent.elapsed();
        assert_eq!(stuck.line(), "MSG stalled 1500");
        newcomer
    });
    let line = wait_for_log(&host, &["hook stalled its thread", "crashkit", "STALL"]);
    assert!(line.contains("WARN"), "{line}");
    let moved = wait_for_log(&host, &["its waiting connections move to thread"]);
    println!(
        "{what}: logged {line:?} and {moved:?}; a new connection served {newcomer:?} after it"
    );
    assert_bystanders_served(&what, first);
    assert!(
        newcomer < Duration::from_millis(1500),
        "{what}: a new connection was served {newcomer:?} after the call, not during it"
    );
    // From then on it stalls nobody but its own caller.
    let (_, samples) = with_bystanders(addr, || {
        assert_eq!(stuck.ask("STALL 3000"), "MSG stalled 3000");
    });
    assert_bystanders_served(&format!("STALL 3000 after demotion ({keys:?})"), samples);
    // The tasks the moved connections left behind have ended: the host
    // stops at once, with no connection left to wait for.
    host.signal(libc::SIGTERM);
    let stopped = host.wait_exit(WAIT);
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}");
    let log = host.stderr();
    assert!(!log.contains("still open after"), "{log}");
}

#[test]
fn a_call_past_the_time_limit_is_answered_timed_out_and_the_connection_goes_on() {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), "hook_timeout_secs = 1", "");
    let (mut c, _) = Conn::open(host.addr());
    let asked = Instant::now();
    assert_eq!(c.ask("SLOW 5000"), "ERR plugin crashkit timed out");
    let waited = asked.elapsed();
    println!("SLOW 5000 with a 1 s limit answered in {waited:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "answered after {waited:?}"
    );
    assert_eq!(c.ask("OK"), "MSG ok");
    assert_eq!(c.ask("HELLO"), HELLO_REPLY);
}

#[test]
fn a_plugin_past_its_bound_of_concurrent_calls_is_told_busy_and_others_serve() {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), "", "max_plugin_calls = 2");
    let addr = host.addr();
    let mut slow: Vec<Conn> = (0..3).map(|_| Conn::open(addr).0).collect();
    let sent = Instant::now();
    for c in &mut slow {
        c.send("SLOW 3000");
    }
    // Whichever of the three the host took last is refused at once; the
    // other two sleep their 3 s.
    let replies: Vec<(String, Duration)> = std::thread::scope(|s| {
        let readers: Vec<_> = slow
            .iter_mut()
            .map(|c| s.spawn(move || (c.line(), sent.elapsed())))
            .collect();
        let (mut other, _) = Conn::open(addr);
        let asked = Instant::now();
        assert_eq!(other.ask("HELLO"), HELLO_REPLY);
        let hello = asked.elapsed();
        println!("HELLO while crashkit is at its bound: {hello:?}");
        assert!(hello < BYSTANDER_BOUND, "HELLO took {hello:?}");
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let busy: Vec<&(String, Duration)> = replies
        .iter()
        .filter(|(line, _)| line == "ERR plugin crashkit busy")
        .collect();
    assert_eq!(busy.len(), 1, "{replies:?}");
    assert!(busy[0].1 < Duration::from_secs(1), "{replies:?}");
    let slept = replies
        .iter()
        .filter(|(line, at)| line == "MSG slept 3000" && *at >= Duration::from_millis(2900))
        .count();
    assert_eq!(slept, 2, "{replies:?}");
}

#[test]
fn a_plugin_filling_its_share_of_blocking_threads_delays_no_other_plugins_blocking_hook() {
    // The case: hundreds of slow blocking calls of one plugin. Its
    // bound (64 by default) refuses the rest, and the blocking pool is
    // sized for every plugin's bound, so testkit's blocking SLEEP still
    // finds a thread at once.
    let runtime = tempfile::tempdir().unwrap();
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\nworker_threads = 1\n{}{}",
            plugin_entry("crashkit"),
            plugin_entry("testkit")
        ))
        .env("TMPDIR", runtime.path().display().to_string())
        .spawn();
    let addr = host.addr();
    let mut slow: Vec<Conn> = (0..200).map(|_| Conn::open(addr).0).collect();
    for c in &mut slow {
        c.send("SLOW 3000");
    }
    // Wait until crashkit holds all it may: its later calls are refused.
    let busy = slow
        .iter_mut()
        .rev()
        .take(100)
        .map(|c| c.line())
        .filter(|line| line == "ERR plugin crashkit busy")
        .count();
    assert!(busy > 0, "crashkit was never at its bound");
    let (mut other, _) = Conn::open(addr);
    let asked = Instant::now();
    assert_eq!(other.ask("SLEEP 10"), "MSG slept 10");
    let took = asked.elapsed();
    println!("testkit's blocking SLEEP 10 while crashkit fills its share: {took:?}");
    assert!(took < Duration::from_secs(1), "SLEEP 10 took {took:?}");
}

#[test]
fn a_plugin_whose_calls_hang_makes_only_itself_unavailable() {
    let runtime = tempfile::tempdir().unwrap();
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\nhook_timeout_secs = 1\nmax_abandoned_calls = 2\n{}{}{}",
            plugin_entry("hello"),
            plugin_entry("crashkit"),
            plugin_entry("testkit")
        ))
        .env("TMPDIR", runtime.path().display().to_string())
        .spawn();
    let (mut c, _) = Conn::open(host.addr());
    for _ in 0..2 {
        assert_eq!(c.ask("SLOW 600000"), "ERR plugin crashkit timed out");
    }
    assert_eq!(
        c.ask("SLOW 1"),
        "ERR plugin crashkit unavailable: too many timed-out calls still running"
    );
    // Hooks of other plugins, which start on blocking threads too, serve.
    assert_eq!(c.ask("HELLO"), HELLO_REPLY);
    assert_eq!(c.ask("SLEEP 10"), "MSG slept 10");
}

/// Connects, expects the greeting, asks `OK`. False if the connection was
/// cut on the way (a serving process that died under it).
fn served_once(addr: SocketAddr) -> bool {
    let stream = TcpStream::connect_timeout(&addr, WAIT).expect("connect: never refused");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    let cut = |e: &std::io::Error| {
        matches!(
            e.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
        )
    };
    match reader.read_line(&mut line) {
        Ok(0) => return false,
        Ok(_) => assert_eq!(line, format!("{GREETING}\n")),
        Err(e) if cut(&e) => return false,
        Err(e) => panic!("waiting for the greeting: {e}"),
    }
    if let Err(e) = (&stream).write_all(b"OK\n") {
        assert!(cut(&e), "sending OK: {e}");
        return false;
    }
    line.clear();
    match reader.read_line(&mut line) {
        Ok(0) => false,
        Ok(_) => {
            assert_eq!(line, "MSG ok\n");
            true
        }
        Err(e) if cut(&e) => false,
        Err(e) => panic!("waiting for the reply to OK: {e}"),
    }
}

/// Connects every 10 ms until `stop` is set; returns how many connections
/// were made and every refusal.
fn connect_until(addr: SocketAddr, stop: &AtomicBool) -> (usize, Vec<String>) {
    let mut made = 0;
    let mut refused = Vec::new();
    let start = Instant::now();
    for _ in 0..5_000 {
        if stop.load(Ordering::Relaxed) || start.elapsed() > WAIT {
            break;
        }
        match TcpStream::connect_timeout(&addr, WAIT) {
            Ok(_) => made += 1,
            Err(e) => refused.push(format!("after {:?}: {e}", start.elapsed())),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (made, refused)
}

/// Whether a connection opened before a crash was served after it (`Some`)
/// or cut (`None`); fails the test if it hangs.
fn served_or_cut(stream: &TcpStream, reader: &mut BufReader<TcpStream>) -> Option<String> {
    if stream.try_clone().unwrap().write_all(b"OK\n").is_err() {
        return None;
    }
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => None,
        Ok(_) => Some(line),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => None,
        Err(e) => panic!("a connection opened before the crash hung: {e}"),
    }
}

/// Sends `request`, a hook that kills the process running it, and checks
/// that the service goes on: the listener never refuses, a new connection is
/// served within a second, the log names plugin, hook and one of `signals`,
/// and a SIGTERM then stops the host cleanly with its copies removed.
fn a_crash_costs_only_its_connections(request: &str, signals: &[&str]) {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), "", "");
    let addr = host.addr();
    assert_eq!(copy_dirs(runtime.path()).len(), 1, "no copy directory");

    let earlier = TcpStream::connect(addr).unwrap();
    earlier.set_read_timeout(Some(WAIT)).unwrap();
    let mut earlier_reader = BufReader::new(earlier.try_clone().unwrap());
    let mut greeting = String::new();
    earlier_reader.read_line(&mut greeting).unwrap();
    assert_eq!(greeting, format!("{GREETING}\n"));

    let (mut crasher, _) = Conn::open(addr);
    assert_eq!(crasher.ask("OK"), "MSG ok");
    let stop = AtomicBool::new(false);
    let (served_after, connector) = std::thread::scope(|s| {
        let connector = s.spawn(|| connect_until(addr, &stop));
        let crashed = Instant::now();
        crasher.send(request);
        assert!(crasher.is_closed(), "the crashing connection stayed open");
        let mut served_after = None;
        wait_until(WAIT, || {
            if served_once(addr) {
                served_after = Some(crashed.elapsed());
            }
            served_after.is_some()
        });
        stop.store(true, Ordering::Relaxed);
        (served_after, connector.join().unwrap())
    });
    let served_after = served_after.unwrap_or_else(|| {
        panic!(
            "no connection served within {WAIT:?} of the crash:\n{}",
            host.stderr()
        )
    });
    let (made, refused) = connector;
    println!(
        "{request}: first request served {served_after:?} after the crashing one was sent; \
         {made} connections made meanwhile, {} refused",
        refused.len()
    );
    assert!(refused.is_empty(), "connections refused: {refused:?}");
    assert!(made > 0, "the connecting loop never connected");
    assert!(
        served_after < Duration::from_secs(1),
        "served only {served_after:?} after the crash"
    );

    let line = wait_for_log(&host, &["serving process died", "crashkit", request]);
    assert!(
        signals.iter().any(|s| line.contains(s)),
        "no signal of {signals:?} in {line:?}"
    );
    println!("{request}: logged {line:?}");
    // Lost with the process that served it, or served by its successor;
    // never left hanging.
    let earlier_outcome = served_or_cut(&earlier, &mut earlier_reader);
    println!("{request}: a connection opened before the crash: {earlier_outcome:?}");
    if let Some(reply) = earlier_outcome {
        assert_eq!(reply, "MSG ok\n");
    }

    let status = host.terminate();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let left = copy_dirs(runtime.path());
    assert!(left.is_empty(), "copies left behind: {left:?}");
}

#[test]
fn an_aborting_hook_costs_only_its_connections() {
    a_crash_costs_only_its_connections("ABORT", &["SIGABRT"]);
}

#[test]
fn a_segfaulting_hook_costs_only_its_connections() {
    a_crash_costs_only_its_connections("SEGV", &["SIGSEGV"]);
}

#[test]
fn a_stack_overflow_costs_only_its_connections() {
    // Rust's guard-page handler reports the overflow and aborts; without it
    // the fault itself ends the process.
    a_crash_costs_only_its_connections("OVERFLOW", &["SIGABRT", "SIGSEGV"]);
}

/// Sends `request` on a new connection, expects it cut by the crash, and
/// waits until a new connection is served again.
fn crash_and_recover(addr: SocketAddr, request: &str) {
    let (mut c, _) = Conn::open(addr);
    c.send(request);
    assert!(c.is_closed(), "{request} did not cut its connection");
    assert!(
        wait_until(WAIT, || served_once(addr)),
        "not served again after {request}"
    );
}

#[test]
fn a_hook_that_crashed_three_times_is_disabled_and_the_rest_serve() {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), "", "");
    let addr = host.addr();
    for _ in 0..3 {
        crash_and_recover(addr, "SEGV");
    }
    let (mut c, _) = Conn::open(addr);
    assert_eq!(
        c.ask("SEGV"),
        "ERR plugin crashkit disabled: crashed 3 times in 10 minutes (last: SIGSEGV)"
    );
    assert_eq!(c.ask("OK"), "MSG ok");
    assert_eq!(c.ask("HELLO"), HELLO_REPLY);
    let line = wait_for_log(&host, &["disabling hook", "crashkit", "SEGV"]);
    assert!(line.contains("ERROR"), "{line}");
    assert_eq!(
        host.stderr().matches("serving process died").count(),
        3,
        "{}",
        host.stderr()
    );
}

#[test]
fn a_panic_in_a_panic_abort_plugin_is_contained_as_a_crash() {
    let library = build_test_plugin("abortpanic", &[]);
    let runtime = tempfile::tempdir().unwrap();
    let host = HostStart::new()
        .config(format!(
            "server_name = \"h\"\n{}[[plugin]]\npath = {:?}\n",
            plugin_entry("hello"),
            library.display().to_string()
        ))
        .env("XDG_RUNTIME_DIR", runtime.path().display().to_string())
        .spawn();
    let addr = host.addr();
    let (mut c, _) = Conn::open(addr);
    assert_eq!(c.ask("OK"), "MSG ok");
    let crashed = Instant::now();
    crash_and_recover(addr, "PANIC");
    println!("PANIC: served again {:?} after", crashed.elapsed());
    let line = wait_for_log(&host, &["serving process died", "abortpanic", "PANIC"]);
    assert!(line.contains("SIGABRT"), "{line}");
    let (mut c, _) = Conn::open(addr);
    assert_eq!(c.ask("OK"), "MSG ok");
    assert_eq!(c.ask("HELLO"), HELLO_REPLY);
}

#[test]
fn a_crash_is_blamed_on_the_hook_that_crashed_not_on_hooks_running_beside_it() {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), "", "");
    let addr = host.addr();
    for _ in 0..3 {
        // A slow call of another hook is running on another thread when
        // SEGV crashes the serving process.
        let (mut slow, _) = Conn::open(addr);
        slow.send("SLOW 100000");
        assert!(
            wait_until(WAIT, || log_line(&host, &["hook still running", "SLOW"])
                .is_some()
                || slow_is_running(&host)),
            "SLOW never ran"
        );
        crash_and_recover(addr, "SEGV");
    }
    let (mut c, _) = Conn::open(addr);
    assert_eq!(
        c.ask("SEGV"),
        "ERR plugin crashkit disabled: crashed 3 times in 10 minutes (last: SIGSEGV)"
    );
    assert_eq!(c.ask("SLOW 10"), "MSG slept 10", "{}", host.stderr());
    let innocent = log_line(
        &host,
        &["while this hook was running (on another thread)", "SLOW"],
    );
    assert!(innocent.is_some(), "{}", host.stderr());
}

/// Whether a SLOW call is in the serving process: its blocking thread shows
/// up as sleeping in a nanosleep.
fn slow_is_running(host: &HostProcess) -> bool {
    let pid = host.serving_pid();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).any(|t| {
        std::fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.contains("nanosleep"))
    })
}

#[test]
fn an_inline_call_past_the_time_limit_ends_the_serving_process_and_is_blamed() {
    let runtime = tempfile::tempdir().unwrap();
    let host = crashkit_host(runtime.path(), "hook_timeout_secs = 2", "");
    let addr = host.addr();
    let (mut c, _) = Conn::open(addr);
    // STALL earns its place inline...
    c.make_inline("STALL 0", "MSG stalled 0", "crashkit", 4);
    // ...then never returns.
    let sent = Instant::now();
    c.send("STALL 600000");
    assert!(c.is_closed(), "the held connection was not ended");
    let ended = sent.elapsed();
    println!("an inline call held past a 2 s limit ended after {ended:?}");
    assert!(ended < Duration::from_secs(10), "{ended:?}");
    let line = wait_for_log(&host, &["died", "SIGABRT", "crashkit", "STALL"]);
    assert!(!line.contains("another thread"), "{line}");
    assert!(
        log_line(&host, &["past its time limit", "STALL"]).is_some(),
        "{}",
        host.stderr()
    );
    assert!(wait_until(WAIT, || served_once(addr)), "not served again");
}
