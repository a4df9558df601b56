//! The harness's own CPU time. The server is another process, so this is the client's cost alone
//! (on loopback that includes the kernel's TCP work done in the client's system calls).

use std::time::Duration;

/// CPU time consumed by this process (all threads), and how often its threads were switched
/// out (each a thread that went to sleep, or was made to, and had to be woken again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
    /// Voluntary and involuntary context switches.
    pub switches: u64,
}

impl CpuTime {
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// CPU spent since `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            switches: self.switches.saturating_sub(earlier.switches),
        }
    }
}

/// User and system CPU time consumed by this process so far, and its context switches.
pub fn process_cpu_time() -> CpuTime {
    // SAFETY: getrusage only writes into the struct we pass; an all-zero rusage is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid, writable pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return CpuTime::default();
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    CpuTime {
        user: tv(usage.ru_utime),
        system: tv(usage.ru_stime),
        switches: (usage.ru_nvcsw + usage.ru_nivcsw).max(0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_shows_up_as_user_time() {
        // Spins until 20 ms of user time are counted (on a loaded machine that takes longer
        // than 20 ms of wall time); fails only if busy work never shows up as user time.
        let before = process_cpu_time();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut x = 0u64;
        let spent = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let spent = process_cpu_time().since(before);
            if spent.user >= Duration::from_millis(20) || std::time::Instant::now() > deadline {
                break spent;
            }
        };
        assert!(spent.user >= Duration::from_millis(20), "{spent:?}");
        assert!(spent.total() >= spent.user);
    }
}
