//! The fixed settings of one worker process, resolved from the command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Args;

/// How far apart this worker's clock and the server's may run, as a fraction of the
/// lease, and a constant on top: the server's wall clock judges a lease this worker
/// counts on its own clock.
const CLOCK_RATE: f64 = 0.01;
const CLOCK_SKEW: Duration = Duration::from_secs(1);

/// Fixed settings of one worker process.
pub struct Settings {
    pub worker_id: String,
    pub hostname: String,
    pub gpu: Option<u32>,
    /// Absolute; run files go under `<data_dir>/runs/<run_id>/`.
    pub data_dir: PathBuf,
    pub poll: Duration,
    pub lease_seconds: u32,
    pub heartbeat: Duration,
    pub grace: Duration,
    /// `--max-output-size` in bytes; `None`: off.
    pub max_output: Option<u64>,
    /// `--warn-run-dir-size` in bytes; `None`: off.
    pub warn_run_dir: Option<u64>,
}

impl Settings {
    /// Settings from the command line; creates the data directory if needed.
    pub fn from_args(args: &Args) -> Result<Self, String> {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_owned());
        let worker_id = match (&args.worker_id, args.gpu) {
            (Some(id), _) if !id.trim().is_empty() => id.trim().to_owned(),
            (_, Some(gpu)) => format!("{hostname}-gpu{gpu}"),
            (_, None) => format!("{hostname}-{}", std::process::id()),
        };
        let runs = args.data_dir.join("runs");
        crate::process::private_dirs(&runs)
            .map_err(|e| format!("cannot create {}: {e}", runs.display()))?;
        let data_dir = args
            .data_dir
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", args.data_dir.display()))?;
        check_lease(args.lease(), args.heartbeat(), args.grace())?;
        Ok(Self {
            worker_id,
            hostname,
            gpu: args.gpu,
            data_dir,
            poll: args.poll(),
            lease_seconds: args.lease_seconds,
            heartbeat: args.heartbeat(),
            grace: args.grace(),
            max_output: args.max_output_size.0,
            warn_run_dir: args.warn_run_dir_size.0,
        })
    }
}

impl Settings {
    /// How long before the server may requeue a job this worker stops it.
    pub fn margin(&self) -> Duration {
        margin(
            Duration::from_secs(u64::from(self.lease_seconds)),
            self.grace,
        )
    }

    /// Time after the last acknowledged renewal was sent at which a job is stopped
    /// (SIGTERM, then SIGKILL after the grace): dead before the server's lease runs out.
    pub fn fence_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.lease_seconds)).saturating_sub(self.margin())
    }
}

/// The kill grace (the job is dead, not dying) and the clock allowance.
fn margin(lease: Duration, grace: Duration) -> Duration {
    grace + lease.mul_f64(CLOCK_RATE) + CLOCK_SKEW
}

/// Refuses a lease too short to fence in: two heartbeats (one may be lost) and the
/// margin must fit in it.
pub fn check_lease(lease: Duration, heartbeat: Duration, grace: Duration) -> Result<(), String> {
    let clock = lease.mul_f64(CLOCK_RATE) + CLOCK_SKEW;
    let needed = heartbeat * 2 + margin(lease, grace);
    if lease < needed {
        return Err(format!(
            "a lease of {}s is too short: it must be at least 2 x heartbeat {}s + kill grace \
             {}s + clock margin {:.2}s = {:.2}s (a longer --lease-seconds, a shorter \
             --heartbeat-interval or --kill-grace)",
            lease.as_secs_f64(),
            heartbeat.as_secs_f64(),
            grace.as_secs_f64(),
            clock.as_secs_f64(),
            needed.as_secs_f64()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_must_hold_two_heartbeats_and_the_margin() {
        let s = Duration::from_secs;
        // 15 s lease, 5 s heartbeats, 1 s grace: 10 + 1 + 1.15 fits.
        assert!(check_lease(s(15), s(5), s(1)).is_ok());
        // The default 10 s grace does not fit a 15 s lease.
        let err = check_lease(s(15), s(5), s(10)).expect_err("too short");
        assert!(err.contains("a lease of 15s is too short"), "{err}");
        assert!(err.contains("kill grace 10s"), "{err}");
        assert!(!err.contains('\n'));
        // The defaults (60 s, 20 s, 10 s) fit.
        assert!(check_lease(s(60), s(20), s(10)).is_ok());
    }
}
