//! What the harness reads from `/proc`: a server's CPU seconds (its threads' `schedstat`
//! nanoseconds, or `/proc/<pid>/stat` utime + stime ticks when a thread ended), its resident memory (`/proc/<pid>/status` VmRSS, sampled every 50 ms for the peak) and
//! the kernel's listen-queue overflow counter (`/proc/net/netstat` TcpExt ListenOverflows).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime in ticks from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds a process has used (all its threads), or None once it is gone.
pub fn cpu_seconds(pid: u32, ticks_per_s: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&stat).map(|t| t as f64 / ticks_per_s)
}

/// A process's CPU at one moment: the tick count of `/proc/<pid>/stat` and, per live thread,
/// the nanoseconds of `/proc/<pid>/task/<tid>/schedstat` (its first field, time on a CPU).
#[derive(Debug, Clone, Default)]
pub struct CpuReading {
    seconds: f64,
    threads: Vec<(u32, u64)>,
}

impl CpuReading {
    /// Reads `pid`'s CPU now, or `None` once it is gone.
    pub fn of(pid: u32, ticks_per_s: f64) -> Option<Self> {
        let seconds = cpu_seconds(pid, ticks_per_s)?;
        let mut threads = Vec::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let tid = task.file_name().to_string_lossy().parse::<u32>();
                let stat = std::fs::read_to_string(task.path().join("schedstat"));
                if let (Ok(tid), Ok(stat)) = (tid, stat)
                    && let Some(ns) = parse_schedstat_ns(&stat)
                {
                    threads.push((tid, ns));
                }
            }
        }
        threads.sort_unstable();
        Some(Self { seconds, threads })
    }

    /// CPU seconds from `self` to `later`: to the nanosecond from the threads' own clocks
    /// while every thread of `self` is still alive at `later` (a thread that ended took its
    /// time with it), else from the ticks (10 ms each on Linux: 3 % of a 0.3 s trial).
    pub fn seconds_until(&self, later: &Self) -> f64 {
        let before = |tid: u32| {
            self.threads
                .binary_search_by_key(&tid, |&(t, _)| t)
                .map(|i| self.threads[i].1)
        };
        let all_alive = !self.threads.is_empty()
            && self
                .threads
                .iter()
                .all(|(tid, _)| later.threads.binary_search_by_key(tid, |&(t, _)| t).is_ok());
        if !all_alive {
            return later.seconds - self.seconds;
        }
        let ns: u64 = later
            .threads
            .iter()
            .map(|&(tid, ns)| ns.saturating_sub(before(tid).unwrap_or(0)))
            .sum();
        ns as f64 / 1e9
    }
}

/// Nanoseconds on a CPU from the text of a `schedstat` file (`<on cpu> <waiting> <slices>`).
pub fn parse_schedstat_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// VmRSS in KiB from the text of `/proc/<pid>/status`.
pub fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory of a process in KiB, or None once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// `TcpExt: ListenOverflows` from the text of `/proc/net/netstat` (a names line then a values
/// line per prefix).
pub fn parse_listen_overflows(netstat: &str) -> Option<u64> {
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = lines.next()?;
    let values = lines.next()?;
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// The kernel's listen-overflow counter (all sockets), 0 if unreadable.
pub fn listen_overflows() -> u64 {
    std::fs::read_to_string("/proc/net/netstat")
        .ok()
        .and_then(|t| parse_listen_overflows(&t))
        .unwrap_or(0)
}

/// Samples a process's RSS every 50 ms on its own thread and keeps the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// Stops sampling (after one last sample) and returns the peak in KiB.
    pub fn finish(mut self, pid: u32) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let last = rss_kib(pid).unwrap_or(0);
        self.peak.load(Ordering::Relaxed).max(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_skip_a_command_with_spaces_and_parens() {
        let stat =
            "4242 (my (odd) server) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn rss_is_read_from_status() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    3804 kB\nThreads:\t2\n";
        assert_eq!(parse_rss_kib(status), Some(3804));
        assert_eq!(parse_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn listen_overflows_come_from_the_tcpext_values_line() {
        let netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 417 420\nIpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(parse_listen_overflows(netstat), Some(417));
        assert_eq!(parse_listen_overflows("IpExt: a\nIpExt: 1\n"), None);
    }

    #[test]
    fn cpu_is_counted_to_the_nanosecond_while_threads_live_and_by_ticks_once_one_ended() {
        assert_eq!(parse_schedstat_ns("123456789 42 7\n"), Some(123_456_789));
        assert_eq!(parse_schedstat_ns(""), None);
        let before = CpuReading {
            seconds: 1.00,
            threads: vec![(10, 1_000_000_000), (11, 500_000_000)],
        };
        // Both threads alive, a new one started: the nanosecond clocks, the new one whole.
        let later = CpuReading {
            seconds: 1.30,
            threads: vec![(10, 1_200_000_000), (11, 550_000_000), (12, 30_000_000)],
        };
        assert!((before.seconds_until(&later) - 0.28).abs() < 1e-9);
        // Thread 11 ended: its time is in the ticks only.
        let ended = CpuReading {
            seconds: 1.30,
            threads: vec![(10, 1_200_000_000)],
        };
        assert!((before.seconds_until(&ended) - 0.30).abs() < 1e-9);
        // This process, for real: a fixed amount of work (not a length of time) shows up, to
        // well below a tick.
        let pid = std::process::id();
        let start = CpuReading::of(pid, clock_ticks()).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        let spent = start.seconds_until(&CpuReading::of(pid, clock_ticks()).unwrap());
        assert!(spent > 0.001, "{spent} s for the loop ({x})");
    }

    #[test]
    fn this_process_is_measurable() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid, clock_ticks()).is_some());
        assert!(rss_kib(pid).unwrap() > 0);
        let sampler = RssSampler::start(pid);
        assert!(sampler.finish(pid) > 0);
    }
}
