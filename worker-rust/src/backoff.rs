//! Waiting between tries: exponential backoff with jitter, a schedule that never runs
//! past a deadline (report retries stay inside the lease), and sleeps that a signal can
//! cut short.
#![forbid(unsafe_code)]

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Exponential backoff with jitter for retries against the server.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self::with_max(Self::MAX)
    }

    /// Delays that grow to `max` at most (jitter included).
    pub fn with_max(max: Duration) -> Self {
        Self {
            next: Self::FIRST.min(max),
            max,
        }
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST.min(self.max);
    }

    /// The next delay: doubles up to the cap (30 s by default), with up to 25% random
    /// jitter so that many workers do not hit a restarting server in lockstep; never
    /// more than 1.25 x the cap (exactly the cap for a capped schedule).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jittered = base + base.mul_f64(f64::from(nanos % 1000) / 4000.0);
        if self.max < Self::MAX {
            jittered.min(self.max)
        } else {
            jittered
        }
    }
}

/// Pauses between the tries of one report: short (at most [`ReportPauses::MAX`]), so a
/// report lands within a couple of seconds of the server answering again, and never
/// past `deadline` (the end of the lease: the last renewal plus the lease). Past it the
/// server has handed the job out again and a report would only be refused as stale.
#[derive(Debug)]
pub struct ReportPauses {
    backoff: Backoff,
    deadline: Instant,
}

impl ReportPauses {
    /// The longest pause between two tries of a report.
    pub const MAX: Duration = Duration::from_secs(2);

    pub fn new(deadline: Instant) -> Self {
        Self {
            backoff: Backoff::with_max(Self::MAX),
            deadline,
        }
    }

    /// The pause before the next try, as of `now`; `None` once no try could be made
    /// inside the lease any more (the last pause ends exactly at the deadline).
    pub fn next_pause(&mut self, now: Instant) -> Option<Duration> {
        let left = self.deadline.checked_duration_since(now)?;
        if left.is_zero() {
            return None;
        }
        Some(self.backoff.next_delay().min(left))
    }

    /// How long until the deadline (zero once past it).
    pub fn left(&self, now: Instant) -> Duration {
        self.deadline.saturating_duration_since(now)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// Sleeps `total`, waking every 100 ms to return early once `stop()` holds.
pub fn pause_until(total: Duration, stop: impl Fn() -> bool) {
    let end = Instant::now() + total;
    while !stop() {
        let now = Instant::now();
        if now >= end {
            return;
        }
        thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        let first = b.next_delay();
        assert!(first >= Backoff::FIRST && first <= Backoff::FIRST.mul_f64(1.25));
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(d <= Backoff::MAX.mul_f64(1.25));
        }
        assert!(b.next_delay() >= Backoff::MAX);
        b.reset();
        assert!(b.next_delay() <= Backoff::FIRST.mul_f64(1.25));
    }

    #[test]
    fn a_capped_backoff_never_exceeds_its_cap() {
        let mut b = Backoff::with_max(Duration::from_secs(2));
        for _ in 0..50 {
            assert!(b.next_delay() <= Duration::from_secs(2));
        }
    }

    /// Replays a report that fails at once (or after `request` each time) against a
    /// clock that only moves by the pauses: every try lands inside the lease, no pause
    /// is longer than the cap, and tries keep coming to the end of the lease.
    fn replay(lease: Duration, request: Duration) -> (Duration, Vec<Duration>) {
        let start = Instant::now();
        let mut pauses = ReportPauses::new(start + lease);
        let mut now = start;
        let mut seen = Vec::new();
        loop {
            now += request; // one try
            assert!(
                now <= start + lease + request,
                "a try started after the lease"
            );
            match pauses.next_pause(now) {
                Some(pause) => {
                    seen.push(pause);
                    now += pause;
                }
                None => return (now - start, seen),
            }
            assert!(seen.len() < 10_000, "the schedule does not end");
        }
    }

    #[test]
    fn report_retries_fit_inside_the_lease() {
        for lease_s in [10, 15, 60, 600] {
            let lease = Duration::from_secs(lease_s);
            for request in [Duration::ZERO, Duration::from_millis(300)] {
                let (total, pauses) = replay(lease, request);
                assert!(total <= lease + request, "{lease_s}s: {total:?}");
                assert!(pauses.iter().all(|p| *p <= ReportPauses::MAX), "{pauses:?}");
                let slept: Duration = pauses.iter().sum();
                assert!(slept <= lease, "{lease_s}s: slept {slept:?}");
                // Tries go on until the lease is nearly over (not given up early)...
                assert!(total + ReportPauses::MAX >= lease, "{lease_s}s: {total:?}");
                // ...and come often: none of the old 8-30 s gaps.
                assert!(pauses.len() as u64 >= lease_s / 3, "{lease_s}s: {pauses:?}");
            }
        }
    }

    #[test]
    fn report_pauses_end_at_the_deadline() {
        let now = Instant::now();
        let mut pauses = ReportPauses::new(now + Duration::from_millis(700));
        assert!(pauses
            .next_pause(now)
            .is_some_and(|p| p <= Duration::from_millis(700)));
        assert_eq!(
            pauses.next_pause(now + Duration::from_millis(650)),
            Some(Duration::from_millis(50))
        );
        assert_eq!(pauses.next_pause(now + Duration::from_millis(700)), None);
        assert_eq!(pauses.next_pause(now + Duration::from_secs(5)), None);
        assert_eq!(pauses.left(now + Duration::from_secs(5)), Duration::ZERO);
    }

    #[test]
    fn pause_returns_early_when_asked() {
        let started = Instant::now();
        pause_until(Duration::from_secs(10), || true);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
