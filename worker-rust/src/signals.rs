//! SIGINT/SIGTERM handling: the first signal drains (finish the current job, then
//! exit); the second stops now: the job's process group gets SIGTERM and, after the
//! kill grace, SIGKILL, its end is reported as an interrupt (`cancelled`, no retry), and
//! the worker exits; a third signal skips what is left of the grace.
//!
//! Two signals sent close together may arrive as one (a signal still pending is not
//! queued twice): each is acted on only once the previous one is counted, which the
//! worker says on its log ("draining", "stopping the running job").
#![forbid(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Shared shutdown state between the signal thread and the worker loop.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Signals received so far.
    count: AtomicUsize,
    /// True while a job is in hand (spawned, running or being reported). The signal
    /// thread holds this lock while it exits the process on a second signal, so the
    /// worker loop cannot start a job in the middle of that exit.
    busy: Mutex<bool>,
}

impl Shutdown {
    /// Starts the signal thread. `exit_idle(signal)` runs on the second signal when no
    /// job is in hand; it is expected to unregister and exit the process.
    pub fn install(exit_idle: impl Fn(i32) + Send + 'static) -> io::Result<Self> {
        let shutdown = Self::default();
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let state = shutdown.clone();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    let seen = state.inner.count.fetch_add(1, Ordering::SeqCst) + 1;
                    if seen == 1 {
                        say!(
                            "signal {signal}: draining; the current job (if any) finishes \
                             first. Send it again to stop now."
                        );
                        continue;
                    }
                    let busy = state.lock_busy();
                    if *busy {
                        if seen == 2 {
                            say!("signal {signal}: stopping now; ending the current job");
                        } else {
                            say!("signal {signal}: killing the current job now");
                        }
                    } else {
                        say!("signal {signal}: stopping now");
                        exit_idle(signal);
                    }
                }
            })?;
        Ok(shutdown)
    }

    /// First signal seen (or [`request`](Self::request)ed): take no new job.
    pub fn drain_requested(&self) -> bool {
        self.inner.count.load(Ordering::SeqCst) >= 1
    }

    /// Second signal seen: end the running job now.
    pub fn forced(&self) -> bool {
        self.inner.count.load(Ordering::SeqCst) >= 2
    }

    /// Third signal seen: SIGKILL the job now, without waiting out the grace.
    pub fn kill_now(&self) -> bool {
        self.inner.count.load(Ordering::SeqCst) >= 3
    }

    /// Acts as if a signal had arrived.
    #[cfg(test)]
    pub fn request(&self) {
        self.inner.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Marks a job as in hand until the returned guard is dropped.
    pub fn job_in_hand(&self) -> BusyGuard<'_> {
        *self.lock_busy() = true;
        BusyGuard { shutdown: self }
    }

    fn lock_busy(&self) -> MutexGuard<'_, bool> {
        // A poisoned lock only means a panic elsewhere; the bool is still meaningful.
        self.inner
            .busy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Clears the "job in hand" mark when dropped.
pub struct BusyGuard<'a> {
    shutdown: &'a Shutdown,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        *self.shutdown.lock_busy() = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_drains_second_forces() {
        let s = Shutdown::default();
        assert!(!s.drain_requested() && !s.forced());
        s.request();
        assert!(s.drain_requested() && !s.forced());
        s.request();
        assert!(s.forced() && !s.kill_now());
        s.request();
        assert!(s.kill_now());
    }

    #[test]
    fn busy_guard_clears_on_drop() {
        let s = Shutdown::default();
        {
            let _guard = s.job_in_hand();
            assert!(*s.lock_busy());
        }
        assert!(!*s.lock_busy());
    }
}
