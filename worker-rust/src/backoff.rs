//! Waiting between tries: exponential backoff with jitter, and sleeps that a signal
//! can cut short.
#![forbid(unsafe_code)]

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Exponential backoff with jitter for retries against the server.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);
    const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// The next delay: doubles up to 30 s, with up to 25% random jitter so that many
    /// workers do not hit a restarting server in lockstep.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
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
    fn pause_returns_early_when_asked() {
        let started = Instant::now();
        pause_until(Duration::from_secs(10), || true);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
