//! How much of the machine's CPU sits idle. Another serving thread costs
//! CPU per request (each thread's poll finds fewer ready sockets, and the
//! threads sleep and wake more), and it serves more only if a core is free
//! to run it: the balancer asks this before spreading connections.

use std::time::Duration;

/// The idle time of the CPUs this process may run on, from `/proc/stat`.
pub struct IdleCores {
    /// The CPUs in the process's affinity mask when it was made.
    cpus: Vec<usize>,
    /// Clock ticks per second, the unit of `/proc/stat`.
    ticks_per_second: u64,
    /// Reused for every read.
    text: String,
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
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let mut idle = IdleCores {
            cpus,
            ticks_per_second: u64::try_from(ticks).ok().filter(|&t| t > 0)?,
            text: String::new(),
        };
        idle.read()?;
        Some(idle)
    }

    /// The idle time (idle and waiting for I/O) of those CPUs so far,
    /// summed over them.
    pub fn read(&mut self) -> Option<Duration> {
        use std::io::Read;
        self.text.clear();
        std::fs::File::open("/proc/stat")
            .and_then(|mut f| f.read_to_string(&mut self.text))
            .ok()?;
        let ticks = idle_ticks(&self.text, &self.cpus)?;
        let per = self.ticks_per_second;
        Some(Duration::from_secs(ticks / per) + Duration::from_secs(ticks % per) / per as u32)
    }
}

/// Idle plus I/O-wait ticks of `cpus`, from the text of `/proc/stat`.
fn idle_ticks(stat: &str, cpus: &[usize]) -> Option<u64> {
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
        if !cpus.contains(&cpu) {
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
    use super::{IdleCores, idle_ticks};
    use std::time::Duration;

    const STAT: &str = "\
cpu  400 0 300 9000 50 0 10 0 0 0
cpu0 100 0 100 4000 20 0 5 0 0 0
cpu1 300 0 200 5000 30 0 5 0 0 0
intr 12345 0 0
ctxt 999
";

    #[test]
    fn idle_time_is_summed_over_the_allowed_cpus_alone() {
        assert_eq!(idle_ticks(STAT, &[0, 1]), Some(9050));
        assert_eq!(idle_ticks(STAT, &[1]), Some(5030));
        // The summary line `cpu` is never counted as a CPU.
        assert_eq!(idle_ticks(STAT, &[7]), None);
        assert_eq!(idle_ticks("cpu0 1 2\n", &[0]), None);
    }

    #[test]
    fn this_machine_reports_idle_time_that_grows() {
        let Some(mut idle) = IdleCores::new() else {
            panic!("no /proc/stat or affinity mask here");
        };
        let before = idle.read().expect("read");
        std::thread::sleep(Duration::from_millis(100));
        assert!(idle.read().expect("read") >= before);
    }
}
