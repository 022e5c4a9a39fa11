//! A plugin that fails the ways native code fails and a panic cannot
//! report: the host's containment tests drive it over real sockets.
//!
//! | line          | what the hook does                                      |
//! |---------------|---------------------------------------------------------|
//! | `ABORT`       | `std::process::abort()`                                 |
//! | `SEGV`        | writes to an unmapped address: SIGSEGV                  |
//! | `OVERFLOW`    | recurses until the stack overflows                      |
//! | `STALL <ms>`  | sleeps `ms` milliseconds on the thread that called it, then `MSG stalled <ms>` |
//! | `SPIN <ms>`   | busy-loops `ms` milliseconds, then `MSG spun <ms>`      |
//! | `SLOW <ms>`   | sleeps `ms` milliseconds, declared `.blocking()`, then `MSG slept <ms>` |
//! | `OK`          | `MSG ok`                                                |
//! | `WORK <us>`   | busy-loops `us` microseconds, then `MSG worked <us>`: quick, but all CPU |
//!
//! `STALL` and `SPIN` are not declared `.blocking()` on purpose: that is
//! the mistake the host has to survive.

use std::hint::black_box;
use std::time::{Duration, Instant};

use plugin_api::{Hook, HookResult, Host, NoSettings, Plugin, Reply, Request, export_plugin};

pub struct Crashkit;

impl Plugin for Crashkit {
    type Settings = NoSettings;
    type State = ();

    fn new(_: NoSettings, _: &Host) -> Result<Self, String> {
        Ok(Crashkit)
    }

    fn hooks(&self) -> Vec<Hook<Self>> {
        vec![
            Hook::new("ABORT", Crashkit::abort),
            Hook::new("SEGV", Crashkit::segv),
            Hook::new("OVERFLOW", Crashkit::overflow),
            Hook::new(r"STALL (\d+)", Crashkit::stall),
            Hook::new(r"SPIN (\d+)", Crashkit::spin),
            Hook::new(r"SLOW (\d+)", Crashkit::slow).blocking(),
            Hook::new("OK", Crashkit::ok),
            Hook::new(r"WORK (\d+)", Crashkit::work),
        ]
    }
}

/// The number in the request's first group: milliseconds, or for `WORK`
/// microseconds.
fn millis(req: &Request<'_>) -> Result<u64, std::num::ParseIntError> {
    req.group(1).unwrap_or("0").parse()
}

/// Sleeps the milliseconds the request asks for, then answers `MSG <verb> <ms>`.
fn sleep(req: &Request<'_>, reply: &mut Reply<'_>, verb: &str) -> HookResult {
    let ms = millis(req)?;
    std::thread::sleep(Duration::from_millis(ms));
    reply.line(format_args!("MSG {verb} {ms}"));
    Ok(())
}

/// Keeps the thread on the CPU for `time`.
fn busy_loop(time: Duration) {
    let until = Instant::now() + time;
    let mut turns: u64 = 0;
    while Instant::now() < until {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Recurses without end; `black_box` keeps the optimizer from turning the
/// recursion into a loop or proving that it never returns.
fn dive(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth == u64::MAX) {
        return 0;
    }
    dive(frame[0] + 1).wrapping_add(frame[31])
}

impl Crashkit {
    fn abort(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        std::process::abort()
    }

    fn segv(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        // Address 8 lies in the page at 0, which Linux never maps
        // (vm.mmap_min_addr), so the write faults as a null pointer's
        // would. Not null itself: the standard library's debug check of
        // `write_volatile` would catch a null pointer and abort, and this
        // hook must die by SIGSEGV.
        let target = black_box(8usize) as *mut u64;
        // SAFETY: none; this write is deliberately invalid. Crashing the
        // process that runs it is the hook's whole purpose.
        unsafe { std::ptr::write_volatile(target, 0xdead) };
        Err("the write to an unmapped address did not fault".into())
    }

    fn overflow(&self, _: &Request<'_>, _: &mut Reply<'_>) -> HookResult {
        let depth = dive(0);
        Err(format!("the recursion returned at depth {depth}").into())
    }

    fn stall(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        sleep(req, reply, "stalled")
    }

    fn spin(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let ms = millis(req)?;
        busy_loop(Duration::from_millis(ms));
        reply.line(format_args!("MSG spun {ms}"));
        Ok(())
    }

    fn work(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        let us = millis(req)?;
        busy_loop(Duration::from_micros(us));
        reply.line(format_args!("MSG worked {us}"));
        Ok(())
    }

    fn slow(&self, req: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        sleep(req, reply, "slept")
    }

    fn ok(&self, _: &Request<'_>, reply: &mut Reply<'_>) -> HookResult {
        reply.line("MSG ok");
        Ok(())
    }
}

export_plugin!(Crashkit);
