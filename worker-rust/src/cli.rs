//! Command-line interface (clap derive; options also read `WHIRR_*` variables).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Claims jobs from a whirr server and runs them: each in its own process group, with
/// its output in <data-dir>/runs/<run_id>/output.log.
///
/// Ctrl+C or SIGTERM once: finish the current job, then exit. Twice: end the job now.
#[derive(Debug, Clone, Parser)]
#[command(name = "whirr-worker", version, args_override_self = true)]
pub struct Args {
    /// Server URL, e.g. http://head-node:8080
    #[arg(short = 's', long, env = "WHIRR_SERVER_URL")]
    pub server: String,

    /// Data directory shared with the server; run files go to <DIR>/runs/<run_id>/
    #[arg(short = 'd', long = "data-dir", env = "WHIRR_DATA_DIR")]
    pub data_dir: PathBuf,

    /// GPU index this worker owns; jobs get CUDA_VISIBLE_DEVICES=<N>
    #[arg(short = 'g', long)]
    pub gpu: Option<u32>,

    /// Bearer token for the server
    #[arg(long, env = "WHIRR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Seconds each claim waits for a job (long-poll held by the server, at most 60)
    #[arg(long, default_value = "5", value_parser = parse_poll_interval)]
    pub poll_interval: f64,

    /// Seconds between heartbeats of a running job (default and at most: a third of
    /// the lease)
    #[arg(long, value_parser = parse_positive_seconds)]
    pub heartbeat_interval: Option<f64>,

    /// Lease the server grants per claim and heartbeat, in seconds (10..600)
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(10..=600))]
    pub lease_seconds: u32,

    /// Seconds between SIGTERM and SIGKILL when a job is cancelled, timed out or
    /// its lease is lost
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    pub kill_grace: f64,

    /// Worker id to register (default: <hostname>-gpu<N>, or <hostname>-<pid>)
    #[arg(long, env = "WHIRR_WORKER_ID")]
    pub worker_id: Option<String>,

    /// Cap on each job's output.log: past it the log keeps the first SIZE minus 1 MiB
    /// and the last 1 MiB (a quarter of SIZE below 4 MiB), with a line saying what was
    /// dropped (binary units: 512M, 1GiB); `off`: keep all of it
    #[arg(
        long,
        env = "WHIRR_MAX_OUTPUT_SIZE",
        default_value = "1GiB",
        value_name = "SIZE|off",
        value_parser = parse_size_limit
    )]
    pub max_output_size: SizeLimit,

    /// Warn once (logged, and recorded on the run: whirr show) when a running job's run
    /// directory passes this size; `off`: never
    #[arg(
        long,
        env = "WHIRR_WARN_RUN_DIR_SIZE",
        default_value = "10GiB",
        value_name = "SIZE|off",
        value_parser = parse_size_limit
    )]
    pub warn_run_dir_size: SizeLimit,
}

impl Args {
    /// The token, if one was given and is not blank.
    pub fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// How long each claim long-polls.
    pub fn poll(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval)
    }

    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(u64::from(self.lease_seconds))
    }

    /// Heartbeat interval, at most a third of the lease so that two heartbeats can be
    /// lost before the server gives the job away.
    pub fn heartbeat(&self) -> Duration {
        let third = self.lease() / 3;
        self.heartbeat_interval
            .map_or(third, |asked| Duration::from_secs_f64(asked).min(third))
    }

    /// SIGTERM-to-SIGKILL grace period.
    pub fn grace(&self) -> Duration {
        Duration::from_secs_f64(self.kill_grace)
    }
}

/// A size option that `off` switches off (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit(pub Option<u64>);

/// A size, or `off` (as `whirr worker --max-output-size` and `--warn-run-dir-size` read it).
fn parse_size_limit(text: &str) -> Result<SizeLimit, String> {
    crate::sizes::parse_size_or_off(text).map(SizeLimit)
}

/// A non-negative, finite number of seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !value.is_finite() || !(0.0..=86_400.0).contains(&value) {
        return Err(format!("{text} must be between 0 and 86400 seconds"));
    }
    Ok(value)
}

fn parse_positive_seconds(text: &str) -> Result<f64, String> {
    let value = parse_seconds(text)?;
    if value < 0.1 {
        return Err(format!("{text} must be at least 0.1 seconds"));
    }
    Ok(value)
}

fn parse_poll_interval(text: &str) -> Result<f64, String> {
    let value = parse_positive_seconds(text)?;
    if value > 60.0 {
        return Err(format!("{text} must be at most 60 seconds"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("whirr-worker").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_spec() {
        let args = parse(&["-s", "http://h:8080", "-d", "/data"]).expect("parses");
        assert_eq!(args.server, "http://h:8080");
        assert_eq!(args.data_dir, PathBuf::from("/data"));
        assert_eq!(args.gpu, None);
        assert_eq!(args.poll_interval, 5.0);
        assert_eq!(args.heartbeat_interval, None);
        assert_eq!(args.lease_seconds, 60);
        assert_eq!(args.kill_grace, 10.0);
        if std::env::var_os("WHIRR_MAX_OUTPUT_SIZE").is_none() {
            assert_eq!(args.max_output_size, SizeLimit(Some(1 << 30)));
        }
        if std::env::var_os("WHIRR_WARN_RUN_DIR_SIZE").is_none() {
            assert_eq!(args.warn_run_dir_size, SizeLimit(Some(10 << 30)));
        }
        // A third of the lease by default.
        assert_eq!(args.heartbeat(), Duration::from_secs(20));
        // 30 s asked, but a 60 s lease allows at most 20 s.
        let asked = parse(&["-s", "h", "-d", "d", "--heartbeat-interval", "30"]).expect("parses");
        assert_eq!(asked.heartbeat(), Duration::from_secs(20));
    }

    #[test]
    fn long_options_and_gpu() {
        let args = parse(&[
            "--server",
            "http://h",
            "--data-dir",
            "d",
            "--gpu",
            "3",
            "--poll-interval",
            "0.5",
            "--heartbeat-interval",
            "2",
            "--lease-seconds",
            "600",
            "--kill-grace",
            "0",
            "--token",
            " secret ",
            "--worker-id",
            "w1",
            "--max-output-size",
            "512M",
            "--warn-run-dir-size",
            "64K",
        ])
        .expect("parses");
        assert_eq!(args.gpu, Some(3));
        assert_eq!(args.poll(), Duration::from_millis(500));
        assert_eq!(args.heartbeat(), Duration::from_secs(2));
        assert_eq!(args.grace(), Duration::ZERO);
        assert_eq!(args.token(), Some("secret"));
        assert_eq!(args.worker_id.as_deref(), Some("w1"));
        assert_eq!(args.max_output_size, SizeLimit(Some(512 << 20)));
        let off = parse(&["-s", "x", "-d", "y", "--max-output-size", "OFF"]).expect("parses");
        assert_eq!(off.max_output_size, SizeLimit(None));
        assert_eq!(args.warn_run_dir_size, SizeLimit(Some(64 << 10)));
        let off = parse(&["-s", "x", "-d", "y", "--warn-run-dir-size", "off"]).expect("parses");
        assert_eq!(off.warn_run_dir_size, SizeLimit(None));
        let short = parse(&["-s", "x", "-d", "y", "-g", "0"]).expect("parses");
        assert_eq!(short.gpu, Some(0));
    }

    #[test]
    fn server_and_data_dir_are_required() {
        let kinds = [
            parse(&["-d", "/data"]).map(|_| ()),
            parse(&["-s", "http://h"]).map(|_| ()),
        ];
        for result in kinds {
            // The test environment may set WHIRR_SERVER_URL / WHIRR_DATA_DIR.
            if std::env::var_os("WHIRR_SERVER_URL").is_none()
                && std::env::var_os("WHIRR_DATA_DIR").is_none()
            {
                let err = result.expect_err("missing required option");
                assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
            }
        }
    }

    #[test]
    fn out_of_range_values_are_usage_errors() {
        let bad: [&[&str]; 11] = [
            &["--warn-run-dir-size", "10GB"],
            &["--max-output-size", "1.5G"],
            &["--max-output-size", "0"],
            &["--lease-seconds", "9"],
            &["--lease-seconds", "601"],
            &["--poll-interval", "61"],
            &["--poll-interval", "-1"],
            &["--heartbeat-interval", "0"],
            &["--kill-grace", "nan"],
            &["--kill-grace", "soon"],
            &["--gpu", "-1"],
        ];
        for extra in bad {
            let mut argv = vec!["-s", "http://h", "-d", "/d"];
            argv.extend_from_slice(extra);
            let err = parse(&argv).expect_err(&format!("{extra:?} must be rejected"));
            assert_eq!(err.exit_code(), 2, "{extra:?}");
        }
    }

    #[test]
    fn heartbeat_is_clamped_to_a_third_of_the_lease() {
        let args = parse(&[
            "-s",
            "h",
            "-d",
            "d",
            "--lease-seconds",
            "10",
            "--heartbeat-interval",
            "9",
        ])
        .expect("parses");
        assert!(args.heartbeat() < args.lease());
        assert_eq!(args.heartbeat(), Duration::from_secs(10) / 3);
    }

    #[test]
    fn blank_token_counts_as_none() {
        let args = parse(&["-s", "h", "-d", "d", "--token", "  "]).expect("parses");
        assert_eq!(args.token(), None);
    }
}
