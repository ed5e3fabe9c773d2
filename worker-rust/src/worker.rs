//! The worker loop: register, claim (long-poll), run each job under supervision
//! (heartbeats, cancel, timeout, lease loss, shutdown), report, and unregister.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::backoff::{pause_until, Backoff};
use crate::client::{ApiError, Claimed, Client};
use crate::process::{JobProcess, JobSpec};
use crate::protocol::{
    ClaimRequest, CompleteRequest, FailRequest, HeartbeatRequest, Job, RegisterRequest,
    StartedRequest,
};
use crate::reaper::Reaper;
use crate::settings::Settings;
use crate::signals::Shutdown;

/// Longest pause between two looks at a running job (exit, cancel flag, deadlines).
const MAX_POLL: Duration = Duration::from_millis(50);
/// Retry delay for a heartbeat that did not get through (capped by the interval).
const HEARTBEAT_RETRY: Duration = Duration::from_secs(5);
/// How long a finished job's report is retried while the server is unreachable.
/// Past the lease the server will have requeued the job anyway (and answer 409).
const REPORT_PATIENCE: Duration = Duration::from_secs(600);

/// How a running job ended, as far as the worker is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The process exited by itself.
    Exited(i32),
    /// The server asked for a cancel; the group was ended.
    Cancelled(i32),
    /// `timeout_seconds` ran out; the group was ended.
    TimedOut { code: i32, limit_seconds: f64 },
    /// The worker was told to stop now (second signal); the group was ended.
    ShutDown(i32),
    /// The server gave the job away (409); the group was ended and nothing is reported.
    LeaseLost,
    /// Waiting on the process failed; the group was ended.
    Lost(String),
}

/// A worker: settings, a server connection, the shutdown state and the reaper.
pub struct Worker<'a> {
    settings: Settings,
    client: Client,
    shutdown: Shutdown,
    reaper: Option<&'a Reaper>,
}

impl<'a> Worker<'a> {
    pub fn new(
        settings: Settings,
        client: Client,
        shutdown: Shutdown,
        reaper: Option<&'a Reaper>,
    ) -> Self {
        Self {
            settings,
            client,
            shutdown,
            reaper,
        }
    }

    /// Registers, then claims and runs jobs until a signal asks it to stop. Returns an
    /// error only for what retrying cannot fix (a bad token, a refused registration).
    pub fn run(&self) -> Result<(), String> {
        if !self.register()? {
            return Ok(());
        }
        let s = &self.settings;
        say!(
            "worker {} ready: server {}, data dir {}, gpu {}",
            s.worker_id,
            self.client.base(),
            s.data_dir.display(),
            s.gpu.map_or_else(|| "none".to_owned(), |g| g.to_string())
        );
        let mut backoff = Backoff::new();
        while !self.shutdown.drain_requested() {
            let asked = Instant::now();
            let request = ClaimRequest {
                worker_id: s.worker_id.clone(),
                gpu_id: s.gpu,
                lease_seconds: s.lease_seconds,
                wait: s.poll.as_secs_f64(),
                free_gpu_ids: None,
                free_slots: None,
            };
            match self.client.claim(&request) {
                Ok(Claimed::Job(job)) => {
                    backoff.reset();
                    self.run_job(&job);
                }
                Ok(Claimed::Undecodable(bad)) => {
                    backoff.reset();
                    say!("job {}: {}", bad.id, bad.error);
                    let _busy = self.shutdown.job_in_hand();
                    self.report_fail(bad.id, bad.attempt, bad.error, None, false);
                }
                Ok(Claimed::Nothing) => {
                    backoff.reset();
                    // A server that does not long-poll answers at once; wait out the
                    // rest of the interval instead of spinning.
                    self.pause_unless_draining(s.poll.saturating_sub(asked.elapsed()));
                }
                Err(e @ ApiError::Auth(..)) => return Err(e.to_string()),
                Err(e @ ApiError::Rejected(..)) => {
                    // Perhaps the server restarted and forgot us: register again.
                    let delay = backoff.next_delay();
                    say!(
                        "claim {e}; registering again in {:.1}s",
                        delay.as_secs_f64()
                    );
                    self.pause_unless_draining(delay);
                    if !self.shutdown.drain_requested() && !self.register()? {
                        break;
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    say!("claim failed: {e}; retrying in {:.1}s", delay.as_secs_f64());
                    self.pause_unless_draining(delay);
                }
            }
        }
        Ok(())
    }

    /// Unregisters (best effort, once).
    pub fn unregister(&self) {
        match self.client.unregister(&self.settings.worker_id) {
            Ok(_) => say!("worker {} unregistered", self.settings.worker_id),
            Err(e) => say!("unregister failed: {e}"),
        }
    }

    /// Registers with retries while the server is unreachable. `Ok(false)` when a
    /// signal asked to stop before it succeeded.
    fn register(&self) -> Result<bool, String> {
        let s = &self.settings;
        let request = RegisterRequest {
            worker_id: s.worker_id.clone(),
            hostname: s.hostname.clone(),
            gpu_ids: s.gpu.into_iter().collect(),
            slots: None,
        };
        let mut backoff = Backoff::new();
        loop {
            match self.client.register(&request) {
                Ok(_) => return Ok(true),
                Err(e) if e.is_retryable() => {
                    let delay = backoff.next_delay();
                    say!(
                        "register failed: {e}; retrying in {:.1}s",
                        delay.as_secs_f64()
                    );
                    self.pause_unless_draining(delay);
                    if self.shutdown.drain_requested() {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(format!("cannot register worker {}: {e}", s.worker_id)),
            }
        }
    }

    /// The environment a job runs with, on top of the worker's own.
    fn job_env(&self, job: &Job, run_id: &str, run_dir: &Path) -> Vec<(String, String)> {
        let mut env = vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned())];
        // whirr.init() in the job records its run through this server with the worker's
        // token (whoever can submit a job holds it already); a token in the job's own env
        // comes after, so it wins, and an empty one withholds it.
        if let Some(token) = self.client.token() {
            env.push(("WHIRR_TOKEN".to_owned(), token.to_owned()));
        }
        if let Some(extra) = &job.env {
            env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // Set last, so a job's own env cannot pretend to be another run, server or GPU.
        env.push(("WHIRR_SERVER_URL".to_owned(), self.client.base().to_owned()));
        env.push(("WHIRR_JOB_ID".to_owned(), job.id.to_string()));
        env.push(("WHIRR_RUN_ID".to_owned(), run_id.to_owned()));
        env.push((
            "WHIRR_RUN_DIR".to_owned(),
            run_dir.to_string_lossy().into_owned(),
        ));
        if let Some(gpu) = self.settings.gpu {
            env.push(("CUDA_VISIBLE_DEVICES".to_owned(), gpu.to_string()));
        }
        env
    }

    /// Runs one claimed job to its end and reports it.
    fn run_job(&self, job: &Job) {
        let s = &self.settings;
        let _busy = self.shutdown.job_in_hand();
        let run_id = job.effective_run_id();
        if !is_safe_path_component(&run_id) {
            let error = format!("refusing unsafe run id {run_id:?}");
            say!("job {}: {error}", job.id);
            self.report_fail(job.id, job.attempt, error, None, false);
            return;
        }
        let run_dir = s.data_dir.join("runs").join(&run_id);
        // The job gets the token `job_env` sets, never one merely inherited (a worker
        // started without a token must not leak a stray WHIRR_TOKEN of its own env).
        let spec = JobSpec {
            argv: job.command_argv.clone(),
            workdir: PathBuf::from(&job.workdir),
            env: self.job_env(job, &run_id, &run_dir),
            env_remove: vec!["WHIRR_TOKEN".to_owned()],
            log_path: run_dir.join("output.log"),
        };
        say!(
            "job {} attempt {} ({}): starting {:?} in {}",
            job.id,
            job.attempt,
            job.name.as_deref().unwrap_or("unnamed"),
            job.command_argv,
            job.workdir
        );
        let mut process = match JobProcess::spawn(&spec) {
            Ok(process) => process,
            Err(e) => {
                say!("job {} did not start: {e}", job.id);
                self.report_fail(job.id, job.attempt, e.to_string(), None, false);
                return;
            }
        };
        let pgid = process.pid();
        if let Some(reaper) = self.reaper {
            reaper.watch(pgid);
        }
        let started = StartedRequest {
            worker_id: s.worker_id.clone(),
            attempt: job.attempt,
            pid: process.pid(),
        };
        let outcome = match self.client.started(job.id, &started) {
            Err(ApiError::Conflict(detail)) => {
                say!(
                    "job {}: lease lost before start ({detail}); ending it",
                    job.id
                );
                self.end(&mut process);
                Outcome::LeaseLost
            }
            Err(e) => {
                // Not fatal: the heartbeat settles whether the job is still ours.
                say!("job {}: could not report start: {e}", job.id);
                self.supervise(job, &mut process)
            }
            Ok(_) => self.supervise(job, &mut process),
        };
        if let Err(e) = process.end_leftovers(s.grace) {
            say!("job {}: could not end leftover processes: {e}", job.id);
        }
        if let Some(reaper) = self.reaper {
            reaper.forget(pgid);
        }
        self.report(job, &run_id, outcome);
    }

    /// Watches a running job until it ends one way or another.
    fn supervise(&self, job: &Job, process: &mut JobProcess) -> Outcome {
        let s = &self.settings;
        let started = Instant::now();
        let limit = job
            .timeout_seconds
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 1e9);
        let deadline = limit.map(|t| started + Duration::from_secs_f64(t));
        let mut next_beat = started + s.heartbeat;
        let mut pause = Duration::from_millis(1);
        loop {
            match process.poll() {
                Ok(Some(code)) => return Outcome::Exited(code),
                Ok(None) => {}
                Err(e) => {
                    self.end(process);
                    return Outcome::Lost(format!("worker lost track of the process: {e}"));
                }
            }
            if self.shutdown.forced() {
                say!("job {}: ending it (worker stopping)", job.id);
                return Outcome::ShutDown(self.end(process));
            }
            let now = Instant::now();
            if let (Some(deadline), Some(limit)) = (deadline, limit) {
                if now >= deadline {
                    say!("job {}: timed out after {limit}s; ending it", job.id);
                    let code = self.end(process);
                    return Outcome::TimedOut {
                        code,
                        limit_seconds: limit,
                    };
                }
            }
            if now >= next_beat {
                let beat = HeartbeatRequest {
                    worker_id: s.worker_id.clone(),
                    lease_seconds: s.lease_seconds,
                    attempt: job.attempt,
                };
                match self.client.heartbeat(job.id, &beat) {
                    Ok(answer) if answer.cancel_requested => {
                        say!("job {}: cancel requested; ending it", job.id);
                        return Outcome::Cancelled(self.end(process));
                    }
                    Ok(_) => next_beat = Instant::now() + s.heartbeat,
                    Err(ApiError::Conflict(detail)) => {
                        say!("job {}: lease lost ({detail}); ending it", job.id);
                        self.end(process);
                        return Outcome::LeaseLost;
                    }
                    Err(e) => {
                        // Keep running: only the server's 409 says the job is not ours.
                        say!("job {}: heartbeat failed: {e}", job.id);
                        next_beat = Instant::now() + s.heartbeat.min(HEARTBEAT_RETRY);
                    }
                }
            }
            thread::sleep(pause);
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Ends the job's process group (SIGTERM, grace, SIGKILL); returns its exit code.
    fn end(&self, process: &mut JobProcess) -> i32 {
        match process.terminate(self.settings.grace) {
            Ok(code) => code,
            Err(e) => {
                say!("ending pid {} failed: {e}; sending SIGKILL", process.pid());
                let _ = process.signal_group(Signal::SIGKILL);
                process.kill().unwrap_or(-(Signal::SIGKILL as i32))
            }
        }
    }

    /// Tells the server how the job ended.
    fn report(&self, job: &Job, run_id: &str, outcome: Outcome) {
        let complete = |exit_code: i32, error_message: Option<&str>| {
            let body = CompleteRequest {
                worker_id: self.settings.worker_id.clone(),
                exit_code,
                run_id: Some(run_id.to_owned()),
                error_message: error_message.map(str::to_owned),
                attempt: job.attempt,
            };
            say!("job {}: exit code {exit_code}", job.id);
            self.deliver(job.id, "complete", || self.client.complete(job.id, &body));
        };
        match outcome {
            Outcome::Exited(code) => complete(code, None),
            Outcome::Cancelled(code) => complete(code, Some("cancelled on request")),
            Outcome::ShutDown(code) => complete(code, Some("killed: worker shutting down")),
            Outcome::TimedOut {
                code,
                limit_seconds,
            } => {
                let error = format!("timed out after {limit_seconds}s");
                self.report_fail(job.id, job.attempt, error, Some(code), true);
            }
            Outcome::Lost(error) => self.report_fail(job.id, job.attempt, error, None, false),
            Outcome::LeaseLost => say!("job {}: not reported (lease lost)", job.id),
        }
    }

    /// Reports a job that could not start (or, with `timed_out`, ran out of time).
    fn report_fail(
        &self,
        job_id: i64,
        attempt: u32,
        error: String,
        exit_code: Option<i32>,
        timed_out: bool,
    ) {
        let body = FailRequest {
            worker_id: self.settings.worker_id.clone(),
            error_message: error,
            attempt,
            exit_code,
            timed_out,
        };
        self.deliver(job_id, "fail", || self.client.fail(job_id, &body));
    }

    /// Sends a report, retrying while the server is unreachable (up to
    /// [`REPORT_PATIENCE`], or until a second signal). A 409 means a stale attempt:
    /// logged and dropped.
    fn deliver<T>(&self, job_id: i64, what: &str, send: impl Fn() -> Result<T, ApiError>) {
        let first = Instant::now();
        let mut backoff = Backoff::new();
        loop {
            match send() {
                Ok(_) => return,
                Err(ApiError::Conflict(detail)) => {
                    say!("job {job_id}: {what} refused as stale, dropped: {detail}");
                    return;
                }
                Err(e) if e.is_retryable() => {
                    if first.elapsed() > REPORT_PATIENCE || self.shutdown.forced() {
                        say!("job {job_id}: giving up on {what}: {e}");
                        return;
                    }
                    let delay = backoff.next_delay();
                    say!(
                        "job {job_id}: {what} failed: {e}; retrying in {:.1}s",
                        delay.as_secs_f64()
                    );
                    self.pause_unless_forced(delay);
                }
                Err(e) => {
                    say!("job {job_id}: {what} failed: {e}");
                    return;
                }
            }
        }
    }

    fn pause_unless_draining(&self, total: Duration) {
        pause_until(total, || self.shutdown.drain_requested());
    }

    fn pause_unless_forced(&self, total: Duration) {
        pause_until(total, || self.shutdown.forced());
    }
}

/// A run id must name exactly one directory under `runs/`.
pub fn is_safe_path_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_cannot_escape_the_runs_dir() {
        assert!(is_safe_path_component("job-42"));
        assert!(is_safe_path_component("local-20250601-120000-abcdef"));
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "a\\b", "a\0b"] {
            assert!(!is_safe_path_component(bad), "{bad:?}");
        }
    }
}
