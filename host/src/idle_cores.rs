//! How much of the machine's CPU sits idle. Another serving thread costs
//! CPU per request (each thread's poll finds fewer ready sockets, and the
//! threads sleep and wake more), and it serves more only if a core is free
//! to run it: the balancer asks this before spreading connections.
//!
//! Free means free for this process: idle on a CPU it may run on (its
//! affinity mask), and, in a cgroup with a CPU limit (`cpu.max`, as a
//! container's `--cpus` sets), within that limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The idle time of the CPUs this process may run on, from `/proc/stat`,
/// and the use of its cgroup's CPU limit, if it has one.
pub struct IdleCores {
    /// Whether the process may run on each CPU, by number, as its affinity
    /// mask said when this was made.
    cpus: Vec<bool>,
    /// Clock ticks per second, the unit of `/proc/stat`.
    ticks_per_second: u64,
    /// Reused for every read.
    text: String,
    limit: Option<CpuLimit>,
}

/// A cgroup's CPU limit, in cores, and the file that counts its use.
struct CpuLimit {
    cores: f64,
    stat: PathBuf,
}

/// One read: CPU time so far.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Idle time of the CPUs the process may run on, summed over them.
    pub cpus: Duration,
    /// The cgroup's CPU limit in cores, and its CPU use so far.
    pub limit: Option<(f64, Duration)>,
}

impl Idle {
    /// Cores free on average between `self` and `later`, `wall` apart.
    pub fn free_cores(self, later: Idle, wall: f64) -> Option<f64> {
        if wall <= 0.0 {
            return None;
        }
        let cpus = later.cpus.checked_sub(self.cpus)?.as_secs_f64() / wall;
        Some(match (self.limit, later.limit) {
            (Some((cores, before)), Some((_, after))) => {
                let used = after.checked_sub(before)?.as_secs_f64() / wall;
                cpus.min((cores - used).max(0.0))
            }
            _ => cpus,
        })
    }
}

impl IdleCores {
    /// `None` where the affinity mask or `/proc/stat` cannot be read.
    pub fn new() -> Option<IdleCores> {
        // SAFETY: an all-zero cpu_set_t is a valid, empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: fills the set we own, of the size we pass.
        if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
            return None;
        }
        let cpus = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: reads the set we own, at an index below its size.
            .map(|cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let mut idle = IdleCores {
            cpus,
            ticks_per_second: u64::try_from(ticks).ok().filter(|&t| t > 0)?,
            text: String::new(),
            limit: cpu_limit(),
        };
        idle.read()?;
        Some(idle)
    }

    /// The idle time (idle and waiting for I/O) of those CPUs so far, and
    /// the cgroup's use of its limit.
    pub fn read(&mut self) -> Option<Idle> {
        use std::io::Read;
        self.text.clear();
        std::fs::File::open("/proc/stat")
            .and_then(|mut f| f.read_to_string(&mut self.text))
            .ok()?;
        let ticks = idle_ticks(&self.text, &self.cpus)?;
        let per = self.ticks_per_second;
        let cpus = Duration::from_secs(ticks / per) + Duration::from_secs(ticks % per) / per as u32;
        let limit = self.limit.as_ref().and_then(|l| {
            let stat = std::fs::read_to_string(&l.stat).ok()?;
            Some((l.cores, usage(&stat)?))
        });
        Some(Idle { cpus, limit })
    }
}

/// The CPU limit of the nearest cgroup (v2) above this process that has
/// one, if any.
fn cpu_limit() -> Option<CpuLimit> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let root = Path::new("/sys/fs/cgroup");
    let mut dir = root.join(path.trim_start_matches('/'));
    loop {
        let max = std::fs::read_to_string(dir.join("cpu.max")).ok();
        if let Some(cores) = max.as_deref().and_then(limit_cores) {
            return Some(CpuLimit {
                cores,
                stat: dir.join("cpu.stat"),
            });
        }
        if dir == root || !dir.pop() {
            return None;
        }
    }
}

/// Cores that a `cpu.max` of `QUOTA PERIOD` allows; `None` for `max`.
fn limit_cores(max: &str) -> Option<f64> {
    let mut fields = max.split_ascii_whitespace();
    let quota: f64 = fields.next()?.parse().ok()?;
    let period: f64 = fields.next()?.parse().ok()?;
    (period > 0.0).then(|| quota / period)
}

/// `usage_usec` of a cgroup's `cpu.stat`.
fn usage(stat: &str) -> Option<Duration> {
    stat.lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .and_then(|u| u.trim().parse().ok())
        .map(Duration::from_micros)
}

/// Idle plus I/O-wait ticks of the CPUs marked in `cpus`, from the text of
/// `/proc/stat`.
fn idle_ticks(stat: &str, cpus: &[bool]) -> Option<u64> {
    let mut total = 0u64;
    let mut found = 0;
    for line in stat.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(cpu) = fields
            .next()
            .and_then(|name| name.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.get(cpu).copied().unwrap_or(false) {
            continue;
        }
        // user nice system idle iowait ...
        let mut times = fields.skip(3).map(|t| t.parse::<u64>().ok());
        let idle = times.next()??;
        let iowait = times.next().flatten().unwrap_or(0);
        total += idle + iowait;
        found += 1;
    }
    (found > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::{Idle, IdleCores, idle_ticks, limit_cores, usage};
    use std::time::Duration;

    /// Marks `cpus` as allowed.
    fn allowed(cpus: &[usize]) -> Vec<bool> {
        let mut mask = vec![false; 8];
        cpus.iter().for_each(|&c| mask[c] = true);
        mask
    }

    const STAT: &str = "\
cpu  400 0 300 9000 50 0 10 0 0 0
cpu0 100 0 100 4000 20 0 5 0 0 0
cpu1 300 0 200 5000 30 0 5 0 0 0
intr 12345 0 0
ctxt 999
";

    #[test]
    fn idle_time_is_summed_over_the_allowed_cpus_alone() {
        assert_eq!(idle_ticks(STAT, &allowed(&[0, 1])), Some(9050));
        assert_eq!(idle_ticks(STAT, &allowed(&[1])), Some(5030));
        // The summary line `cpu` is never counted as a CPU.
        assert_eq!(idle_ticks(STAT, &allowed(&[7])), None);
        assert_eq!(idle_ticks("cpu0 1 2\n", &allowed(&[0])), None);
        assert_eq!(idle_ticks("cpu9 1 2 3 4 5\n", &allowed(&[0])), None);
    }

    #[test]
    fn a_cgroup_limit_caps_the_free_cores() {
        assert_eq!(limit_cores("max 100000\n"), None);
        assert_eq!(limit_cores("200000 100000\n"), Some(2.0));
        assert_eq!(
            usage("usage_usec 1500000\nuser_usec 1000000\n"),
            Some(Duration::from_millis(1500))
        );
        let at = |idle_ms, used_ms| Idle {
            cpus: Duration::from_millis(idle_ms),
            limit: Some((2.0, Duration::from_millis(used_ms))),
        };
        // 30 idle CPUs of a big machine, but the cgroup used 1.8 of its 2
        // cores in that second: 0.2 of a core is free.
        let free = at(0, 0).free_cores(at(30_000, 1_800), 1.0).expect("free");
        assert!((free - 0.2).abs() < 1e-9, "{free}");
        // Within the limit, the machine's idle time is what is free.
        let free = at(0, 0).free_cores(at(500, 100), 1.0).expect("free");
        assert!((free - 0.5).abs() < 1e-9, "{free}");
        let unlimited = Idle {
            cpus: Duration::from_millis(700),
            limit: None,
        };
        let before = Idle {
            cpus: Duration::ZERO,
            limit: None,
        };
        assert_eq!(before.free_cores(unlimited, 1.0), Some(0.7));
    }

    #[test]
    fn this_machine_reports_idle_time_that_grows() {
        let Some(mut idle) = IdleCores::new() else {
            panic!("no /proc/stat or affinity mask here");
        };
        let before = idle.read().expect("read");
        std::thread::sleep(Duration::from_millis(100));
        assert!(idle.read().expect("read").cpus >= before.cpus);
    }
}
