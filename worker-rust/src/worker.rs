//! The worker loop: register, claim (long-poll), run each job under supervision
//! (heartbeats, cancel, timeout, lease loss, shutdown), report, and unregister.
//!
//! A hiccup does not kill work: a 5xx or no answer at all is tried again after a pause,
//! for the claim, the heartbeats and the report alike, and the job keeps running. A job
//! is stopped only by a cancel, its time limit, the server saying the attempt is no
//! longer this worker's (409, or 404 for a job it no longer has), a stop signal, or
//! self-fencing: once `lease - margin` has passed since the last renewal the server
//! acknowledged was *sent* ([`Settings::fence_after`]), the job's group gets SIGTERM and,
//! after the kill grace, SIGKILL, so it is dead before the server can consider the lease
//! expired and hand the job out again (docs/architecture.md, "Leases"). A finished job's
//! report is tried every couple of seconds until the end of that same lease, so it lands
//! as soon as the server answers again.
//!
//! Requests run on threads of their own, so a server that holds one open never holds
//! the worker: a signal ends a pending claim at once (there is no job to finish), the
//! supervision of a job goes on while its heartbeat waits, and a second signal ends a
//! pending report after [`REPORT_WHEN_STOPPING`].
#![forbid(unsafe_code)]

use std::cell::{Cell, OnceCell};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::backoff::{pause_until, Backoff, ReportPauses};
use crate::client::{ApiError, Claimed, Client};
use crate::files_mode::{self, FilesMode};
use crate::lease_clock::LeaseInstant;
use crate::process::{JobProcess, JobSpec};
use crate::protocol::{
    ClaimRequest, CompleteRequest, FailRequest, HeartbeatRequest, HeartbeatResponse, Job, JobUsage,
    RegisterRequest, SizeWarningRequest, StartedRequest,
};
use crate::reaper::Reaper;
use crate::run_size::{check_every, SizeWatch};
use crate::settings::Settings;
use crate::ship_run::new_ledger;
use crate::shipping::Shipper;
use crate::signals::Shutdown;
use crate::sizes::human_bytes;

/// Longest pause between two looks at a running job (exit, cancel flag, deadlines).
const MAX_POLL: Duration = Duration::from_millis(50);
/// Retry delay for a heartbeat that did not get through (capped by the interval).
const HEARTBEAT_RETRY: Duration = Duration::from_secs(2);
/// How often a thread waiting on a request looks at the signals.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);
/// Once a second signal asked to stop now, how long a report still may take.
pub const REPORT_WHEN_STOPPING: Duration = Duration::from_secs(2);
/// Longest wait, at a job's end, for its files to reach the server before its end is
/// reported anyway (shipping then goes on in the background).
const FLUSH_LIMIT: Duration = Duration::from_secs(60);
/// Shortest such wait, even late in a lease.
const FLUSH_MIN: Duration = Duration::from_secs(1);

/// A size warning on its way to the server.
type PendingWarning = Receiver<Result<(), ApiError>>;

/// How a running job ended, as far as the worker is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The process exited by itself.
    Exited(i32),
    /// The server asked for a cancel; the group was ended.
    Cancelled(i32),
    /// `timeout_seconds` ran out; the group was ended.
    TimedOut { code: i32, limit_seconds: f64 },
    /// The worker's operator stopped it (second signal: SIGTERM, SIGKILL after the
    /// grace or at a third signal); reported as an interrupt: `cancelled`, no retry.
    ShutDown(i32),
    /// The server gave the job away (409 or 404), or no renewal got through for a whole
    /// lease (self-fencing); the group was ended and nothing is reported.
    LeaseLost,
    /// Waiting on the process failed; the group was ended.
    Lost(String),
}

/// What a renewal call brought back: the start report, or a heartbeat's answer.
enum Renewal {
    Started,
    Beat(HeartbeatResponse),
}

/// Runs `call` on a thread of its own; its answer arrives on the receiver.
fn spawn_call<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("request".into())
        .spawn(move || {
            let _ = tx.send(call());
        });
    if let Err(e) = spawned {
        // No thread to spare: answer with nothing, which reads as a failed call.
        say!("cannot start a request thread: {e}");
    }
    rx
}

/// Waits for the answer on `rx`, or until `stop()` holds (checked every
/// [`SIGNAL_CHECK`]): then the request is left to finish on its own and `None` comes
/// back. `None` too if the request's thread could not start.
fn wait_answer<T>(rx: &Receiver<T>, stop: impl Fn() -> bool) -> Option<T> {
    loop {
        match rx.recv_timeout(SIGNAL_CHECK) {
            Ok(answer) => return Some(answer),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) if stop() => return rx.try_recv().ok(),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// A worker: settings, a server connection, the shutdown state and the reaper.
pub struct Worker<'a> {
    settings: Settings,
    client: Client,
    shutdown: Shutdown,
    reaper: Option<&'a Reaper>,
    /// True once the server took the registration, until the worker unregisters
    /// (shared with the signal thread, which unregisters an idle worker itself).
    registered: Arc<AtomicBool>,
    /// Shared or shipped, decided once the server answers.
    mode: Cell<FilesMode>,
    /// In shipped mode, the thread that ships run files.
    shipper: OnceCell<Shipper>,
}

impl<'a> Worker<'a> {
    pub fn new(
        settings: Settings,
        client: Client,
        shutdown: Shutdown,
        reaper: Option<&'a Reaper>,
        registered: Arc<AtomicBool>,
    ) -> Self {
        Self {
            settings,
            client,
            shutdown,
            reaper,
            registered,
            mode: Cell::new(FilesMode::Shared),
            shipper: OnceCell::new(),
        }
    }

    /// The lease the server grants each claim and heartbeat.
    fn lease(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.lease_seconds))
    }

    /// Registers, then claims and runs jobs until a signal asks it to stop. Returns an
    /// error only for what retrying cannot fix (a bad token, a refused registration).
    pub fn run(&self) -> Result<(), String> {
        if !self.register()? || !self.set_up_files()? {
            return Ok(());
        }
        let s = &self.settings;
        say!(
            "worker {} ready: server {}, data dir {}, gpu {}, run files {}",
            s.worker_id,
            self.client.base(),
            s.data_dir.display(),
            s.gpu.map_or_else(|| "none".to_owned(), |g| g.to_string()),
            self.mode.get().wire_name()
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
            // A signal ends the wait at once: no job is in hand, and a job the server
            // hands out on the abandoned long-poll comes back to the queue with its lease.
            let client = self.client.clone();
            let pending = spawn_call(move || client.claim(&request));
            let Some(answer) = wait_answer(&pending, || self.shutdown.drain_requested()) else {
                if !self.shutdown.drain_requested() {
                    say!("claim failed: no request thread; retrying");
                    self.pause_unless_draining(backoff.next_delay());
                }
                continue;
            };
            let lease_end = asked + self.lease();
            match answer {
                Ok(Claimed::Job(job)) => {
                    backoff.reset();
                    self.run_job(&job, lease_end);
                }
                Ok(Claimed::Undecodable(bad)) => {
                    backoff.reset();
                    say!("job {}: {}", bad.id, bad.error);
                    let _busy = self.shutdown.job_in_hand();
                    self.report_fail(bad.id, bad.attempt, bad.error, None, false, lease_end);
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

    /// Unregisters (best effort, once; nothing when the worker never registered).
    pub fn unregister(&self) {
        unregister(&self.client, &self.settings.worker_id, &self.registered);
    }

    /// Registers with retries while the server is unreachable. `Ok(false)` when a
    /// signal asked to stop before it succeeded (a pending try is not waited for).
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
            let client = self.client.clone();
            let body = request.clone();
            let pending = spawn_call(move || client.register(&body));
            let Some(answer) = wait_answer(&pending, || self.shutdown.drain_requested()) else {
                return Ok(false);
            };
            match answer {
                Ok(_) => {
                    self.registered.store(true, Ordering::SeqCst);
                    return Ok(true);
                }
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

    /// Decides shared or shipped mode (asking the server for its id, with retries while
    /// it cannot be reached) and, when shipped, starts the shipper, which resumes what a
    /// previous worker on this data dir left. `Ok(false)` when a signal asked to stop.
    fn set_up_files(&self) -> Result<bool, String> {
        let data_dir = &self.settings.data_dir;
        let mut backoff = Backoff::new();
        loop {
            let (client, dir) = (self.client.clone(), data_dir.clone());
            let pending = spawn_call(move || files_mode::detect(&client, &dir));
            let Some(answer) = wait_answer(&pending, || self.shutdown.drain_requested()) else {
                return Ok(false);
            };
            match answer {
                Ok(mode) => {
                    self.mode.set(mode);
                    if mode == FilesMode::Shipped {
                        let shipper =
                            Shipper::start(self.client.clone(), data_dir).map_err(|e| {
                                format!(
                                    "cannot start shipping run files from {}: {e}",
                                    data_dir.display()
                                )
                            })?;
                        let _ = self.shipper.set(shipper);
                    }
                    return Ok(true);
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    say!(
                        "cannot ask the server for its id: {e}; retrying in {:.1}s",
                        delay.as_secs_f64()
                    );
                    self.pause_unless_draining(delay);
                    if self.shutdown.drain_requested() {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// In shipped mode: before the job spawns, seeds a retried attempt's metrics (so
    /// `_idx` goes on after the server's last row) and starts shipping its run.
    fn begin_shipping(&self, job: &Job, run_id: &str, run_dir: &Path) {
        let Some(shipper) = self.shipper.get() else {
            return;
        };
        if job.attempt > 1 {
            match files_mode::seed_metrics(&self.client, run_id, run_dir) {
                Ok(true) => say!("job {}: metrics go on after the server's last row", job.id),
                Ok(false) => {}
                Err(e) => say!("job {}: cannot seed metrics.jsonl: {e}", job.id),
            }
        }
        let ledger = new_ledger(run_id, job.attempt, run_dir);
        if let Err(e) = shipper.begin(ledger) {
            say!("job {}: cannot ship its files: {e}", job.id);
        }
    }

    /// In shipped mode: at the job's end, waits until its files are on the server
    /// (bounded by [`FLUSH_LIMIT`] and by the lease, which the report still needs), so
    /// that `whirr logs` after the end is complete. `wait` false only marks the end.
    fn flush_files(&self, job: &Job, run_id: &str, lease_end: Instant, wait: bool) {
        let Some(shipper) = self.shipper.get() else {
            return;
        };
        let now = Instant::now();
        let margin = (self.lease() / 4).min(Duration::from_secs(5));
        let in_lease = lease_end
            .checked_sub(margin)
            .unwrap_or(now)
            .max(now + FLUSH_MIN);
        let deadline = if wait {
            in_lease.min(now + FLUSH_LIMIT)
        } else {
            now
        };
        let stop = || self.shutdown.forced();
        if !shipper.finish(run_id, job.attempt, deadline, stop) && wait {
            say!(
                "job {}: its files are not all on the server after {:.1}s; reporting its end \
                 anyway (shipping goes on)",
                job.id,
                now.elapsed().as_secs_f64()
            );
        }
    }

    /// The environment a job runs with, on top of the worker's own.
    fn job_env(&self, job: &Job, run_id: &str, run_dir: &Path) -> Vec<(String, String)> {
        let mut env = vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned())];
        // whirr.init() in the job records its run through this server with the run token
        // the claim handed over (it can write only this run, only during this attempt),
        // never the worker's own token: a server that sent none gives the job none. A
        // token in the job's own env comes after, so it wins, and an empty one withholds it.
        if let Some(token) = job.run_token.as_deref().filter(|t| !t.is_empty()) {
            env.push(("WHIRR_TOKEN".to_owned(), token.to_owned()));
        }
        if let Some(extra) = &job.env {
            env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        // Set last, so a job's own env cannot pretend to be another run, server or GPU.
        env.push(("WHIRR_SERVER_URL".to_owned(), self.client.base().to_owned()));
        // "shipped": the tracking library records no artifact the server cannot see
        // (the shipper's upload records it), as under the Python worker.
        env.push((
            "WHIRR_FILES".to_owned(),
            self.mode.get().wire_name().to_owned(),
        ));
        env.push(("WHIRR_JOB_ID".to_owned(), job.id.to_string()));
        env.push(("WHIRR_RUN_ID".to_owned(), run_id.to_owned()));
        env.push((
            "WHIRR_RUN_DIR".to_owned(),
            run_dir.to_string_lossy().into_owned(),
        ));
        if let Some(gpu) = self.settings.gpu {
            env.push(("CUDA_VISIBLE_DEVICES".to_owned(), gpu.to_string()));
            // `--gpu` is an NVML / nvidia-smi index (PCI bus order); CUDA counts fastest
            // first unless told otherwise, which on a box of mixed models is another
            // GPU. A job that sets the order itself keeps it.
            let own_order = job
                .env
                .as_ref()
                .is_some_and(|e| e.contains_key("CUDA_DEVICE_ORDER"));
            if !own_order {
                env.push(("CUDA_DEVICE_ORDER".to_owned(), "PCI_BUS_ID".to_owned()));
            }
        }
        env
    }

    /// Runs one claimed job to its end and reports it. `lease_end`: when the lease the
    /// claim got runs out (heartbeats move it on).
    fn run_job(&self, job: &Job, mut lease_end: Instant) {
        let s = &self.settings;
        let _busy = self.shutdown.job_in_hand();
        let run_id = job.effective_run_id();
        if !is_safe_path_component(&run_id) {
            let error = format!("refusing unsafe run id {run_id:?}");
            say!("job {}: {error}", job.id);
            self.report_fail(job.id, job.attempt, error, None, false, lease_end);
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
            max_output: s.max_output,
            memory_bytes: job.memory_bytes,
            cpus: job.cpus,
        };
        self.begin_shipping(job, &run_id, &run_dir);
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
                self.flush_files(job, &run_id, lease_end, true);
                self.report_fail(job.id, job.attempt, e.to_string(), None, false, lease_end);
                return;
            }
        };
        let pgid = process.pid();
        if let Some(reaper) = self.reaper {
            reaper.watch(pgid);
        }
        let outcome = self.supervise(job, &mut process, &mut lease_end);
        if let Err(e) = process.end_leftovers(s.grace) {
            say!("job {}: could not end leftover processes: {e}", job.id);
        }
        if let Some(reaper) = self.reaper {
            reaper.forget(pgid);
        }
        // The job's processes are gone: the rest of its output (and the tail a cap kept)
        // goes into output.log before its end is shipped and reported, so `whirr logs`
        // right after the end is complete.
        process.end_output();
        // A lost lease's end is not reported: nothing waits on its files (a newer
        // attempt makes the server refuse them; until then they go on in the background).
        let wait = outcome != Outcome::LeaseLost;
        self.flush_files(job, &run_id, lease_end, wait);
        let usage = process.usage();
        self.report(job, &run_id, outcome, usage, lease_end);
    }

    /// Sends the start report (on a thread of its own).
    fn send_started(&self, job: &Job, pid: u32) -> Receiver<Result<Renewal, ApiError>> {
        let client = self.client.clone();
        let run_dir = self
            .settings
            .data_dir
            .join("runs")
            .join(job.effective_run_id());
        let body = StartedRequest {
            worker_id: self.settings.worker_id.clone(),
            attempt: job.attempt,
            pid,
            files: Some(self.mode.get().wire_name().to_owned()),
            run_dir: Some(run_dir.to_string_lossy().into_owned()),
        };
        let id = job.id;
        spawn_call(move || client.started(id, &body).map(|_| Renewal::Started))
    }

    /// Sends a heartbeat (on a thread of its own).
    fn send_heartbeat(&self, job: &Job, timeout: Duration) -> Receiver<Result<Renewal, ApiError>> {
        let s = &self.settings;
        let client = self.client.clone();
        let body = HeartbeatRequest {
            worker_id: s.worker_id.clone(),
            lease_seconds: s.lease_seconds,
            attempt: job.attempt,
        };
        let id = job.id;
        spawn_call(move || client.heartbeat(id, &body, timeout).map(Renewal::Beat))
    }

    /// Watches a running job until it ends one way or another. The start report and
    /// the heartbeats go out on threads of their own, one at a time, so a server that
    /// is slow to answer never delays noticing the job's exit, a timeout or a signal.
    /// Each renewal that gets through moves `lease_end` on.
    fn supervise(&self, job: &Job, process: &mut JobProcess, lease_end: &mut Instant) -> Outcome {
        // Fencing reads the lease clock (it counts a suspend, `Instant` does not); the
        // rest of the worker keeps `Instant`, converted here and back.
        let mut lease_end_boot =
            LeaseInstant::now() + lease_end.saturating_duration_since(Instant::now());
        let outcome = self.supervise_on_lease_clock(job, process, &mut lease_end_boot);
        *lease_end = Instant::now() + lease_end_boot.saturating_duration_since(LeaseInstant::now());
        outcome
    }

    fn supervise_on_lease_clock(
        &self,
        job: &Job,
        process: &mut JobProcess,
        lease_end: &mut LeaseInstant,
    ) -> Outcome {
        let s = &self.settings;
        let started = Instant::now();
        let lease_started = LeaseInstant::now();
        let limit = job
            .timeout_seconds
            .filter(|t| t.is_finite() && *t > 0.0 && *t < 1e9);
        let deadline = limit.map(|t| started + Duration::from_secs_f64(t));
        let mut next_beat = started + s.heartbeat;
        // The claim's lease began after it was asked for: the job stops `fence_after`
        // past that, or past the sending of the last renewal that got through.
        let mut renewed_at = lease_end.checked_sub(self.lease()).unwrap_or(lease_started);
        let mut beat_sent = lease_started;
        let mut pending = Some(self.send_started(job, process.pid()));
        let run_dir = s.data_dir.join("runs").join(job.effective_run_id());
        let mut size_watch = s
            .warn_run_dir
            .map(|limit| SizeWatch::new(limit, check_every(s.heartbeat), started));
        let mut warning: Option<PendingWarning> = None;
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
                return Outcome::ShutDown(self.interrupt(job, process));
            }
            let now = Instant::now();
            let lease_now = LeaseInstant::now();
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
            let answer = match pending.as_ref().map(Receiver::try_recv) {
                None | Some(Err(TryRecvError::Empty)) => None,
                Some(Ok(answer)) => Some(answer),
                Some(Err(TryRecvError::Disconnected)) => Some(Err(ApiError::Transport(
                    "no thread to send the request on".into(),
                ))),
            };
            if let Some(answer) = answer {
                pending = None;
                match answer {
                    Ok(Renewal::Started) => {}
                    Ok(Renewal::Beat(beat)) => {
                        *lease_end = beat_sent + self.lease();
                        renewed_at = beat_sent;
                        next_beat = now + s.heartbeat;
                        if beat.cancel_requested {
                            say!("job {}: cancel requested; ending it", job.id);
                            return Outcome::Cancelled(self.end(process));
                        }
                    }
                    Err(e) if e.is_lease_lost() => {
                        say!("job {}: lease lost ({e}); ending it", job.id);
                        self.end(process);
                        return Outcome::LeaseLost;
                    }
                    Err(e) => {
                        // Keep running and keep renewing: a 5xx or no answer says
                        // nothing about whose job this is.
                        say!("job {}: renewal failed: {e}; retrying", job.id);
                        next_beat = next_beat.min(now + s.heartbeat.min(HEARTBEAT_RETRY));
                    }
                }
            }
            let fence_at = renewed_at + s.fence_after();
            if lease_now >= fence_at {
                say!(
                    "job {}: no renewal acknowledged for {:.1}s (lease {}s - margin {:.1}s); \
                     the server may hand it out again soon, so stopping it here (fenced)",
                    job.id,
                    lease_now
                        .saturating_duration_since(renewed_at)
                        .as_secs_f64(),
                    s.lease_seconds,
                    s.margin().as_secs_f64()
                );
                self.end(process);
                return Outcome::LeaseLost;
            }
            if pending.is_none() && now >= next_beat {
                // Bounded by the time left before fencing (a renewal answered later would
                // come too late to keep the job anyway).
                let left = fence_at.saturating_duration_since(lease_now);
                beat_sent = lease_now;
                pending = Some(self.send_heartbeat(job, left.max(Duration::from_millis(500))));
            }
            if let Some(watch) = size_watch.as_mut() {
                let left = fence_at.saturating_duration_since(lease_now);
                self.watch_size(job, &run_dir, watch, &mut warning, left, now);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Measures the job's run directory when due; a new crossing of the warning size is
    /// logged and recorded on the server (on a thread of its own, bounded like a
    /// heartbeat: the loop must be free to fence the job). A record that failed is tried
    /// at the next measurement; none is measured while one is on its way.
    fn watch_size(
        &self,
        job: &Job,
        run_dir: &Path,
        watch: &mut SizeWatch,
        warning: &mut Option<PendingWarning>,
        fence_left: Duration,
        now: Instant,
    ) {
        if let Some(rx) = warning.as_ref() {
            let failed = match rx.try_recv() {
                Err(TryRecvError::Empty) => return,
                Ok(Ok(())) => {
                    watch.recorded();
                    None
                }
                Ok(Err(e)) => Some(e.to_string()),
                Err(TryRecvError::Disconnected) => Some("no thread to send it on".to_owned()),
            };
            if let Some(why) = failed {
                say!(
                    "Job #{}: could not record the size warning ({why}).",
                    job.id
                );
            }
            *warning = None;
        }
        let Some(size) = watch.crossed(run_dir, now) else {
            return;
        };
        say!(
            "Job #{}: its run directory {} holds {}, past {} (--warn-run-dir-size).",
            job.id,
            run_dir.display(),
            human_bytes(size),
            human_bytes(watch.limit)
        );
        let body = SizeWarningRequest {
            worker_id: self.settings.worker_id.clone(),
            attempt: job.attempt,
            size,
            limit: watch.limit,
        };
        let timeout = fence_left
            .min(self.settings.heartbeat)
            .max(Duration::from_millis(500));
        let (client, id) = (self.client.clone(), job.id);
        *warning = Some(spawn_call(move || client.size_warning(id, &body, timeout)));
    }

    /// The operator's stop: SIGTERM to the job's group (it may checkpoint), SIGKILL once
    /// the grace is over or at once when a third signal asks for it. Returns the
    /// leader's exit code.
    fn interrupt(&self, job: &Job, process: &mut JobProcess) -> i32 {
        let grace = self.settings.grace;
        say!(
            "job {}: stopping the running job (SIGTERM, SIGKILL after {:.1}s; signal again \
             to kill it now)",
            job.id,
            grace.as_secs_f64()
        );
        let sent = process
            .signal_group(Signal::SIGTERM)
            .and_then(|()| process.signal_group(Signal::SIGCONT));
        if let Err(e) = sent {
            say!("job {}: SIGTERM failed: {e}; killing it", job.id);
        } else {
            let deadline = Instant::now() + grace;
            let mut pause = Duration::from_millis(1);
            loop {
                match process.poll() {
                    Ok(Some(_)) if !process.group_alive() => break,
                    Err(_) => break,
                    _ => {}
                }
                if self.shutdown.kill_now() {
                    say!("job {}: killing it now", job.id);
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    say!("job {}: still running after the grace; killing it", job.id);
                    break;
                }
                thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(MAX_POLL);
            }
        }
        match process.kill() {
            Ok(code) => code,
            Err(e) => {
                say!("job {}: waiting for it failed: {e}", job.id);
                -(Signal::SIGKILL as i32)
            }
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

    /// Tells the server how the job ended (retried until `lease_end`).
    fn report(
        &self,
        job: &Job,
        run_id: &str,
        outcome: Outcome,
        usage: Option<JobUsage>,
        lease_end: Instant,
    ) {
        let complete = |exit_code: i32, error_message: Option<&str>| {
            let body = CompleteRequest {
                worker_id: self.settings.worker_id.clone(),
                exit_code,
                run_id: Some(run_id.to_owned()),
                error_message: error_message.map(str::to_owned),
                attempt: job.attempt,
                usage: usage.clone(),
            };
            say!("job {}: exit code {exit_code}", job.id);
            let (client, id) = (self.client.clone(), job.id);
            self.deliver(id, "complete", lease_end, move || {
                client.complete(id, &body)
            });
        };
        match outcome {
            Outcome::Exited(code) => complete(code, None),
            Outcome::Cancelled(code) => complete(code, Some("cancelled on request")),
            Outcome::ShutDown(code) => {
                say!("job {}: exit code {code} (worker interrupted)", job.id);
                let body = FailRequest {
                    worker_id: self.settings.worker_id.clone(),
                    error_message: "worker interrupted".to_owned(),
                    attempt: job.attempt,
                    exit_code: Some(code),
                    timed_out: false,
                    interrupted: true,
                    usage: usage.clone(),
                };
                let (client, id) = (self.client.clone(), job.id);
                self.deliver(id, "fail", lease_end, move || client.fail(id, &body));
            }
            Outcome::TimedOut {
                code,
                limit_seconds,
            } => {
                let body = FailRequest {
                    worker_id: self.settings.worker_id.clone(),
                    error_message: format!("timed out after {limit_seconds}s"),
                    attempt: job.attempt,
                    exit_code: Some(code),
                    timed_out: true,
                    interrupted: false,
                    usage,
                };
                let (client, id) = (self.client.clone(), job.id);
                self.deliver(id, "fail", lease_end, move || client.fail(id, &body));
            }
            Outcome::Lost(error) => {
                self.report_fail(job.id, job.attempt, error, None, false, lease_end);
            }
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
        lease_end: Instant,
    ) {
        let body = FailRequest {
            worker_id: self.settings.worker_id.clone(),
            error_message: error,
            attempt,
            exit_code,
            timed_out,
            interrupted: false,
            usage: None,
        };
        let client = self.client.clone();
        self.deliver(job_id, "fail", lease_end, move || {
            client.fail(job_id, &body)
        });
    }

    /// Sends a report, retrying while the server fails or cannot be reached: every
    /// couple of seconds until `lease_end` ([`ReportPauses`]; past it the server has
    /// handed the job out again), or until a second signal (which leaves a pending try
    /// [`REPORT_WHEN_STOPPING`] to land). A 409 means a stale attempt: logged, dropped.
    fn deliver<T: Send + 'static>(
        &self,
        job_id: i64,
        what: &str,
        lease_end: Instant,
        send: impl Fn() -> Result<T, ApiError> + Send + Sync + 'static,
    ) {
        let send = Arc::new(send);
        let mut pauses = ReportPauses::new(lease_end);
        let forced_at: Cell<Option<Instant>> = Cell::new(None);
        let stop_now = || {
            if !self.shutdown.forced() {
                return false;
            }
            let since = forced_at.get().unwrap_or_else(Instant::now);
            forced_at.set(Some(since));
            since.elapsed() >= REPORT_WHEN_STOPPING
        };
        loop {
            let try_send = Arc::clone(&send);
            let Some(answer) = wait_answer(&spawn_call(move || try_send()), stop_now) else {
                say!("job {job_id}: {what} abandoned: the worker is stopping now");
                return;
            };
            match answer {
                Ok(_) => return,
                Err(ApiError::Conflict(detail)) => {
                    say!("job {job_id}: {what} refused as stale, dropped: {detail}");
                    return;
                }
                Err(e) if e.is_retryable() => {
                    if self.shutdown.forced() {
                        say!("job {job_id}: giving up on {what} (worker stopping now): {e}");
                        return;
                    }
                    let Some(delay) = pauses.next_pause(Instant::now()) else {
                        say!(
                            "job {job_id}: giving up on {what}: {e}; its lease is over, so \
                             the server runs it again"
                        );
                        return;
                    };
                    say!(
                        "job {job_id}: {what} failed: {e}; retrying in {:.1}s ({:.0}s of \
                         the lease left)",
                        delay.as_secs_f64(),
                        pauses.left(Instant::now()).as_secs_f64()
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

/// Unregisters `worker_id` if `registered` says the server has it (best effort, once).
pub fn unregister(client: &Client, worker_id: &str, registered: &AtomicBool) {
    if !registered.swap(false, Ordering::SeqCst) {
        return;
    }
    match client.unregister(worker_id) {
        Ok(_) => say!("worker {worker_id} unregistered"),
        Err(e) => say!("unregister failed: {e}"),
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
    fn a_pending_request_is_left_when_asked_to_stop() {
        let (_tx, rx) = mpsc::channel::<()>(); // never answers
        let started = Instant::now();
        assert_eq!(
            wait_answer(&rx, || started.elapsed() > Duration::from_millis(200)),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let answered = spawn_call(|| 7);
        assert_eq!(wait_answer(&answered, || false), Some(7));
    }

    #[test]
    fn run_ids_cannot_escape_the_runs_dir() {
        assert!(is_safe_path_component("job-42"));
        assert!(is_safe_path_component("local-20250601-120000-abcdef"));
        for bad in ["", ".", "..", "../x", "a/b", "/abs", "a\\b", "a\0b"] {
            assert!(!is_safe_path_component(bad), "{bad:?}");
        }
    }
}
