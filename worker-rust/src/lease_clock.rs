//! The clock leases are measured on: `CLOCK_BOOTTIME`.
//!
//! `std::time::Instant` reads `CLOCK_MONOTONIC`, which stands still while the machine is
//! suspended. The server's clock does not: after a laptop or VM sleeps through a lease,
//! a worker timing its lease on `Instant` would believe it still held a job the server
//! has already handed to someone else, and keep running it beside the new attempt.
//! `CLOCK_BOOTTIME` counts the suspended time too, so fencing happens at once on resume.
//! (The Python worker reads the same clock: `whirr/worker/loop.py`.)

use std::ops::Add;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// A point on the lease clock. Ordered and copyable like `Instant`; only differences
/// between two of them mean anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaseInstant(Duration);

impl LeaseInstant {
    pub fn now() -> Self {
        // CLOCK_BOOTTIME exists on every Linux since 2.6.39; a kernel without it still
        // gets a monotonic clock (which only misses suspended time).
        let spec = clock_gettime(ClockId::CLOCK_BOOTTIME)
            .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
            .expect("a monotonic clock");
        let secs = u64::try_from(spec.tv_sec()).unwrap_or(0);
        let nanos = u32::try_from(spec.tv_nsec()).unwrap_or(0);
        Self(Duration::new(secs, nanos))
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    pub fn checked_sub(self, d: Duration) -> Option<Self> {
        self.0.checked_sub(d).map(Self)
    }
}

impl Add<Duration> for LeaseInstant {
    type Output = Self;

    fn add(self, d: Duration) -> Self {
        Self(self.0 + d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/uptime` is the boot-time clock in seconds (suspended time included): the
    /// lease clock must agree with it, which `CLOCK_MONOTONIC` does not after a suspend.
    #[test]
    fn reads_the_boot_clock() {
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .expect("/proc/uptime")
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .expect("a number");
        let ours = LeaseInstant::now().0.as_secs_f64();
        assert!(
            (ours - uptime).abs() < 1.0,
            "lease clock {ours} vs uptime {uptime}"
        );
    }

    #[test]
    fn moves_forward_and_does_arithmetic() {
        let a = LeaseInstant::now();
        let b = a + Duration::from_millis(1500);
        assert!(b > a);
        assert_eq!(b.saturating_duration_since(a), Duration::from_millis(1500));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
        assert_eq!(b.checked_sub(Duration::from_millis(1500)), Some(a));
        assert!(LeaseInstant::now() >= a);
    }
}
