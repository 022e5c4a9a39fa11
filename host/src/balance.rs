//! Which serving threads take new connections, and when waiting ones move
//! from a busy thread to a less busy one.
//!
//! Spreading connections over threads costs CPU per request: each thread's
//! poll finds fewer ready sockets, and the threads sleep and wake more. It
//! serves more only when a core is free to run the other thread. So the
//! first thread takes every connection until it is busy *and* the machine
//! has a core to spare ([`IdleCores`]); then one other thread, the least
//! busy, accepts too. Connections opened before the load came (a client's
//! pool, a balancer's) would stay where they are, so a thread busy past
//! [`HOT`] while a core is free hands a share of its waiting connections
//! to the least busy thread, through the same take-over that moves them
//! off a thread a hook holds (`crate::handover`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, trace};

use crate::handover::Share;
use crate::idle_cores::{Idle, IdleCores};
use crate::shared::Shared;

/// How often the balancer looks...
const EVERY: Duration = Duration::from_millis(100);
/// ...how many looks its figures span...
const WINDOW: usize = 5;
/// ...and how often the first thread counts a beat when it is free to.
const BEAT: Duration = Duration::from_millis(20);
/// Busier than this (share of its time on a CPU), the first thread shares
/// new connections; less busy than `CLOSE`, it keeps them.
const OPEN: f64 = 0.75;
const CLOSE: f64 = 0.40;
/// Cores idle on average for another thread to be worth it; below
/// `SPARE_GONE`, the first thread takes new connections alone again.
const SPARE: f64 = 0.4;
const SPARE_GONE: f64 = 0.15;
/// A thread this busy gives waiting connections to one below `COOL`.
const HOT: f64 = 0.75;
const COOL: f64 = 0.5;
/// A thread that gave connections takes none for this long, nor gives any
/// after it took some ([`Recent`]); doubled, up to `MAX_HOLD`, each time a
/// move undoes the one before.
const NO_RETURN: Duration = Duration::from_secs(10);
const MAX_HOLD: Duration = Duration::from_secs(600);
/// Looks without a beat of the first thread before it counts as held: one
/// look can miss a beat that a long run of busy tasks delayed.
const STUCK_LOOKS: usize = 2;

/// Which serving threads accept new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepting {
    /// The first thread alone.
    First,
    /// The first thread and one other, the least busy.
    FirstAnd(usize),
    /// Every thread: a hook holds the first.
    All,
}

impl Accepting {
    pub fn admits(self, thread: usize) -> bool {
        match self {
            Accepting::First => thread == 0,
            Accepting::FirstAnd(other) => thread == 0 || thread == other,
            Accepting::All => true,
        }
    }
}

/// What the serving threads accept by, and the balancer sets.
pub type Gate = watch::Receiver<Accepting>;

/// Starts the balancer for the serving threads in `threads`; call it from
/// the first serving thread, whose runtime counts its beats. The threads
/// are those of `shared.threads`. With `spread`
/// false (`worker_threads = 1`: the other thread is a spare) the others
/// accept only while a hook holds the first, and no connection moves for
/// load.
pub fn start(shared: Arc<Shared>, spread: bool) -> std::io::Result<Gate> {
    let (gate, accepting) = watch::channel(Accepting::First);
    let beats = Arc::new(AtomicU64::new(0));
    let beating = Arc::clone(&beats);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            beating.fetch_add(1, Ordering::Relaxed);
        }
    });
    let balancer = Balancer {
        gate,
        shared,
        beats,
        spread,
        // Unknown, the machine is taken to have a core to spare: the host
        // then spreads a busy thread's load as if it had.
        idle: IdleCores::new(),
    };
    std::thread::Builder::new()
        .name("balance".into())
        .spawn(move || balancer.watch())?;
    Ok(accepting)
}

/// Watches from a thread of its own: from a serving thread, a hook holding
/// that thread would hold the watching too.
struct Balancer {
    gate: watch::Sender<Accepting>,
    /// Its serving threads, `shared.threads`.
    shared: Arc<Shared>,
    /// Counted up by the first thread every [`BEAT`]: a count that stands
    /// still means the thread is held, whatever its CPU use.
    beats: Arc<AtomicU64>,
    spread: bool,
    idle: Option<IdleCores>,
}

/// One look at the serving threads and the machine.
struct Look {
    at: Instant,
    beats: u64,
    /// Each serving thread's CPU time, by index; `None` if unknown.
    cpu: Vec<Option<Duration>>,
    idle: Option<Idle>,
}

/// The load between two looks.
#[derive(Debug, Clone, PartialEq)]
struct Load {
    /// Each serving thread's share of the time on a CPU, by index.
    busy: Vec<Option<f64>>,
    /// Cores idle on average; `None` if unknown.
    idle_cores: Option<f64>,
    /// The first thread counted no beat since the look before the last.
    stuck: bool,
    /// The looks span the whole window: enough to move connections by.
    full: bool,
}

impl Load {
    fn between(first: &Look, last: &Look, stuck: bool, full: bool) -> Load {
        let wall = last.at.duration_since(first.at).as_secs_f64();
        let share = |before: Option<Duration>, after: Option<Duration>| {
            let spent = after?.checked_sub(before?)?;
            (wall > 0.0).then(|| spent.as_secs_f64() / wall)
        };
        Load {
            busy: (0..last.cpu.len())
                .map(|i| share(first.cpu.get(i).copied().flatten(), last.cpu[i]))
                .collect(),
            idle_cores: first
                .idle
                .zip(last.idle)
                .and_then(|(a, b)| a.free_cores(b, wall)),
            stuck,
            full,
        }
    }

    fn busy(&self, thread: usize) -> Option<f64> {
        self.busy.get(thread).copied().flatten()
    }

    /// The least busy serving thread other than `not`.
    fn coolest_but(&self, not: usize) -> Option<(usize, f64)> {
        (0..self.busy.len())
            .filter(|&i| i != not)
            .filter_map(|i| Some((i, self.busy(i)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn spare(&self, cores: f64) -> bool {
        self.idle_cores.is_none_or(|idle| idle >= cores)
    }
}

/// Which threads accept from now on, given `load` and which do now, and
/// whether connections move.
fn decide(load: &Load, now: Accepting, spread: bool) -> (Accepting, Option<Share>) {
    if load.stuck {
        return (Accepting::All, None);
    }
    if !spread {
        return (Accepting::First, None);
    }
    let first = load.busy(0).unwrap_or(0.0);
    let coolest = load.coolest_but(0).map_or(1, |(i, _)| i);
    let keeps = first >= CLOSE && load.spare(SPARE_GONE);
    let accepting = match now {
        // The other thread stays the one while it is not busy itself: the
        // figures of idle threads differ by noise alone.
        Accepting::FirstAnd(other) if keeps && load.busy(other).is_none_or(|b| b < COOL) => {
            Accepting::FirstAnd(other)
        }
        Accepting::FirstAnd(_) if keeps => Accepting::FirstAnd(coolest),
        // From the first thread alone, or after a hold, by the same rule.
        _ if first > OPEN && load.spare(SPARE) => Accepting::FirstAnd(coolest),
        _ => Accepting::First,
    };
    let share = (|| {
        if !load.full || !load.spare(SPARE) {
            return None;
        }
        let (from, hot) = (0..load.busy.len())
            .filter_map(|i| Some((i, load.busy(i)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))?;
        let (to, cool) = load.coolest_but(from)?;
        (hot > HOT && cool < COOL).then(|| Share {
            from,
            to,
            // What would even the two out, were the load spread evenly over
            // the waiting connections.
            fraction: (hot - cool) / (2.0 * hot),
        })
    })();
    (accepting, share)
}

/// [`decide`] over the whole window, where each look of it agrees: the
/// start of a load, whose first looks still count the idle time before it,
/// is no reason to spread, nor a moment's lull in another program. The
/// threads are chosen over the window; each look only has to confirm them.
fn decide_steady(
    window: &Load,
    looks: &[Load],
    now: Accepting,
    spread: bool,
) -> (Accepting, Option<Share>) {
    let (mut accepting, mut share) = decide(window, now, spread);
    let opens =
        !matches!(now, Accepting::FirstAnd(_)) && matches!(accepting, Accepting::FirstAnd(_));
    if opens
        && !looks
            .iter()
            .all(|l| l.busy(0).is_some_and(|b| b > OPEN) && l.spare(SPARE))
    {
        accepting = Accepting::First;
    }
    if let Some(s) = share
        && !looks.iter().all(|l| {
            l.busy(s.from).is_some_and(|b| b > HOT)
                && l.busy(s.to).is_some_and(|b| b < COOL)
                && l.spare(SPARE)
        })
    {
        share = None;
    }
    (accepting, share)
}

/// The moves asked for lately, which keep connections from going to and
/// fro: a thread that gave connections takes none for a while, and one
/// that took some gives none. A load that moves with its connections (one
/// busy connection among idle ones) would otherwise swap threads with each
/// move; each time it does, the wait doubles.
struct Recent {
    moves: Vec<(Share, Instant)>,
    hold: Duration,
}

impl Recent {
    fn new() -> Recent {
        Recent {
            moves: Vec::new(),
            hold: NO_RETURN,
        }
    }

    /// Whether `share` may be asked for now; if so, it is counted.
    fn admit(&mut self, share: Share) -> bool {
        let hold = self.hold;
        self.moves.retain(|(_, at)| at.elapsed() < hold);
        if self
            .moves
            .iter()
            .any(|(m, _)| m.to == share.from || m.from == share.to)
        {
            return false;
        }
        self.moves.push((share, Instant::now()));
        true
    }

    /// The last move asked for undid the one before it: the load went with
    /// the connections.
    fn swapped(&mut self, previous: Option<Share>, share: Share) {
        self.hold = match previous {
            Some(p) if p.from == share.to && p.to == share.from => (self.hold * 2).min(MAX_HOLD),
            _ => NO_RETURN,
        };
    }
}

impl Balancer {
    fn look(&mut self) -> Look {
        Look {
            at: Instant::now(),
            beats: self.beats.load(Ordering::Relaxed),
            cpu: self.shared.threads.cpu_times(),
            idle: self.idle.as_mut().and_then(IdleCores::read),
        }
    }

    fn watch(mut self) {
        let mut recent = Recent::new();
        let mut previous: Option<Share> = None;
        let mut looks = VecDeque::with_capacity(WINDOW + 1);
        looks.push_back(self.look());
        // Until every serving thread has stopped listening to the gate.
        while !self.gate.is_closed() {
            std::thread::sleep(EVERY);
            let look = self.look();
            let stuck =
                looks.len() >= STUCK_LOOKS && looks[looks.len() - STUCK_LOOKS].beats == look.beats;
            looks.push_back(look);
            if looks.len() > WINDOW + 1 {
                looks.pop_front();
            }
            let (Some(first), Some(last)) = (looks.front(), looks.back()) else {
                continue;
            };
            let full = looks.len() == WINDOW + 1;
            let load = Load::between(first, last, stuck, full);
            let each: Vec<_> = (1..looks.len())
                .map(|i| Load::between(&looks[i - 1], &looks[i], stuck, full))
                .collect();
            let now = *self.gate.borrow();
            let (accepting, share) = decide_steady(&load, &each, now, self.spread);
            if accepting != now {
                debug!(?load, ?accepting, "serving threads accepting");
                self.gate.send_replace(accepting);
            }
            let Some(share) = share else {
                if load.full && load.busy.iter().flatten().any(|&busy| busy > HOT) {
                    trace!(?load, "a serving thread is busy; its connections stay");
                }
                continue;
            };
            if !recent.admit(share) {
                continue;
            }
            if self.shared.threads.share(share) {
                debug!(?load, ?share, "asking a thread to take waiting connections");
                recent.swapped(previous, share);
                previous = Some(share);
                // The next move is decided on figures taken after this one.
                looks.drain(..looks.len() - 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Accepting, Load, NO_RETURN, Recent, Share, decide, decide_steady};

    fn load(busy: &[f64], idle_cores: Option<f64>) -> Load {
        Load {
            busy: busy.iter().map(|&b| Some(b)).collect(),
            idle_cores,
            stuck: false,
            full: true,
        }
    }

    #[test]
    fn a_busy_first_thread_shares_new_connections_only_with_a_core_to_spare() {
        let first = Accepting::First;
        assert_eq!(decide(&load(&[0.5, 0.0], Some(1.0)), first, true).0, first);
        assert_eq!(
            decide(&load(&[0.95, 0.0], Some(0.9)), first, true).0,
            Accepting::FirstAnd(1)
        );
        // No core free: another thread would only take turns with this one.
        assert_eq!(decide(&load(&[0.95, 0.0], Some(0.1)), first, true).0, first);
        // The least busy other thread is the one that accepts.
        assert_eq!(
            decide(&load(&[0.95, 0.6, 0.1, 0.3], Some(2.0)), first, true).0,
            Accepting::FirstAnd(2)
        );
        // Unknown idle time counts as a core to spare.
        assert_eq!(
            decide(&load(&[0.95, 0.0], None), first, true).0,
            Accepting::FirstAnd(1)
        );
    }

    #[test]
    fn sharing_stops_when_the_first_thread_or_the_spare_core_is_gone() {
        let open = Accepting::FirstAnd(1);
        assert_eq!(decide(&load(&[0.5, 0.5], Some(0.3)), open, true).0, open);
        assert_eq!(
            decide(&load(&[0.3, 0.5], Some(0.3)), open, true).0,
            Accepting::First
        );
        assert_eq!(
            decide(&load(&[0.9, 0.9], Some(0.05)), open, true).0,
            Accepting::First
        );
    }

    #[test]
    fn a_held_first_thread_lets_every_thread_accept_even_when_spare() {
        let mut held = load(&[0.0, 0.0], Some(0.0));
        held.stuck = true;
        assert_eq!(
            decide(&held, Accepting::First, false),
            (Accepting::All, None)
        );
        assert_eq!(
            decide(&held, Accepting::First, true),
            (Accepting::All, None)
        );
        assert_eq!(
            decide(&load(&[1.0, 0.0], Some(1.0)), Accepting::All, false),
            (Accepting::First, None)
        );
    }

    #[test]
    fn only_a_steady_load_spreads_not_the_start_of_one() {
        // The first thread got busy in the window's last looks; the idle
        // time of its first looks is from before the load.
        let looks = [
            load(&[0.0, 0.0], Some(2.0)),
            load(&[0.9, 0.0], Some(1.0)),
            load(&[1.0, 0.0], Some(0.1)),
            load(&[1.0, 0.0], Some(0.0)),
            load(&[1.0, 0.0], Some(0.1)),
        ];
        let window = load(&[0.78, 0.0], Some(0.64));
        assert_eq!(
            decide(&window, Accepting::First, true).1.map(|s| s.to),
            Some(1),
            "the window alone would spread"
        );
        let steady = decide_steady(&window, &looks, Accepting::First, true);
        assert_eq!(steady, (Accepting::First, None));
        // Busy with a core free in every look: it spreads.
        let looks = [load(&[0.95, 0.1], Some(0.8)), load(&[1.0, 0.0], Some(0.9))];
        let window = load(&[0.97, 0.05], Some(0.85));
        let (accepting, share) = decide_steady(&window, &looks, Accepting::First, true);
        assert_eq!(accepting, Accepting::FirstAnd(1));
        assert_eq!(share.map(|s| (s.from, s.to)), Some((0, 1)));
        // Once open, one look without a spare core does not close it.
        let looks = [load(&[0.95, 0.5], Some(0.3)), load(&[0.95, 0.5], Some(0.1))];
        let window = load(&[0.95, 0.5], Some(0.2));
        let open = Accepting::FirstAnd(1);
        assert_eq!(decide_steady(&window, &looks, open, true).0, open);
    }

    #[test]
    fn the_other_thread_stays_while_not_busy_and_a_hold_opens_nothing_by_itself() {
        let open = Accepting::FirstAnd(2);
        // Another thread a hair cooler by noise: the same one accepts.
        let quieter = load(&[0.8, 0.6, 0.05, 0.01], Some(1.0));
        assert_eq!(decide(&quieter, open, true).0, open);
        let busier = load(&[0.8, 0.6, 0.7, 0.01], Some(1.0));
        assert_eq!(decide(&busier, open, true).0, Accepting::FirstAnd(3));
        // Once a hold is over, only the rule that opens from the first
        // thread alone opens.
        let after = load(&[0.5, 0.0], Some(1.0));
        assert_eq!(decide(&after, Accepting::All, true).0, Accepting::First);
        let looks = [load(&[0.9, 0.0], Some(1.0)), load(&[0.3, 0.0], Some(1.0))];
        let window = load(&[0.8, 0.0], Some(1.0));
        let steady = decide_steady(&window, &looks, Accepting::All, true);
        assert_eq!(steady.0, Accepting::First);
    }

    #[test]
    fn moves_do_not_go_to_and_fro() {
        let share = |from, to| Share {
            from,
            to,
            fraction: 0.5,
        };
        let mut recent = Recent::new();
        assert!(recent.admit(share(0, 1)));
        assert!(!recent.admit(share(1, 0)), "straight back");
        assert!(!recent.admit(share(1, 2)), "a thread that took gives none");
        assert!(!recent.admit(share(2, 0)), "a thread that gave takes none");
        assert!(recent.admit(share(3, 2)), "other threads are free to");
        // Each move that undoes the one before doubles the wait.
        recent.swapped(Some(share(0, 1)), share(1, 0));
        assert_eq!(recent.hold, NO_RETURN * 2);
        recent.swapped(Some(share(1, 0)), share(0, 1));
        assert_eq!(recent.hold, NO_RETURN * 4);
        recent.swapped(Some(share(0, 1)), share(0, 2));
        assert_eq!(recent.hold, NO_RETURN);
    }

    #[test]
    fn a_hot_thread_hands_waiting_connections_to_the_coolest_when_a_core_is_free() {
        let share = |l: &Load| decide(l, Accepting::First, true).1;
        assert_eq!(
            share(&load(&[1.0, 0.0], Some(0.9))),
            Some(Share {
                from: 0,
                to: 1,
                fraction: 0.5
            })
        );
        assert_eq!(
            share(&load(&[0.2, 0.9, 0.4], Some(1.0))),
            Some(Share {
                from: 1,
                to: 0,
                fraction: (0.9 - 0.2) / 1.8
            })
        );
        assert_eq!(share(&load(&[1.0, 0.0], Some(0.1))), None, "no core free");
        assert_eq!(share(&load(&[0.7, 0.0], Some(1.0))), None, "not hot");
        assert_eq!(share(&load(&[1.0, 0.6], Some(1.0))), None, "none cool");
        let mut short = load(&[1.0, 0.0], Some(1.0));
        short.full = false;
        assert_eq!(share(&short), None, "figures too recent");
        assert_eq!(
            decide(&load(&[1.0, 0.0], Some(1.0)), Accepting::First, false).1,
            None
        );
    }
}
