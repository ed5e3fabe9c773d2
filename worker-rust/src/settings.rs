//! The fixed settings of one worker process, resolved from the command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Args;

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
        Ok(Self {
            worker_id,
            hostname,
            gpu: args.gpu,
            data_dir,
            poll: args.poll(),
            lease_seconds: args.lease_seconds,
            heartbeat: args.heartbeat(),
            grace: args.grace(),
        })
    }
}
