//! A job's process: spawning it in its own session and containment (`crate::cgroup`: a
//! cgroup v2 of its own, or its process group plus a marker), waiting for it, and ending
//! every process of it (SIGTERM, a grace period, then SIGKILL). Its stdout and stderr
//! are one pipe that `crate::output_cap` copies into its `output.log`.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::cgroup::{self, JobBox};
use crate::output_cap::{OutputCopier, DRAIN_LIMIT};
use crate::protocol::JobUsage;
use crate::sys;

/// In a cgroup, the job's first process is a shell that waits for one line on stdin (the
/// worker writes it once the process is in the job's cgroup), then execs the job with
/// stdin from /dev/null; the worker gone before (end of input) ends it unrun.
const HANDSHAKE: [&str; 3] = [
    "-c",
    "read -r _ || exit 125; exec \"$@\" </dev/null",
    "whirr-job",
];

/// Longest pause between two looks at a running process. Short waits start at 1 ms
/// and double up to this, so a job that ends at once is noticed at once while a long
/// one costs a wake-up every 50 ms.
const MAX_POLL: Duration = Duration::from_millis(50);

/// What to run and where its output goes.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub argv: Vec<String>,
    pub workdir: PathBuf,
    /// Set on top of the worker's own environment, in order (a later key wins).
    pub env: Vec<(String, String)>,
    /// Removed from the inherited environment (e.g. the worker's own token).
    pub env_remove: Vec<String>,
    /// stdout and stderr both go here (appended, through the output cap).
    pub log_path: PathBuf,
    /// `--max-output-size` in bytes; `None`: no cap.
    pub max_output: Option<u64>,
    /// Limits of the whole job, where its cgroup can hold them (`submit --memory/--cpus`).
    pub memory_bytes: Option<u64>,
    pub cpus: Option<f64>,
}

/// Why a job could not start. Reported to the server with `fail`, never a panic.
#[derive(Debug)]
pub enum SpawnError {
    EmptyArgv,
    MissingWorkdir(PathBuf),
    NotFound(String),
    PermissionDenied(String),
    Log(PathBuf, io::Error),
    Other(String, io::Error),
    Containment(String),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyArgv => write!(f, "empty command: nothing to run"),
            Self::MissingWorkdir(dir) => {
                write!(f, "working directory does not exist: {}", dir.display())
            }
            Self::NotFound(exe) => write!(f, "executable not found: {exe:?}"),
            Self::PermissionDenied(exe) => {
                write!(f, "permission denied executing {exe:?}")
            }
            Self::Log(path, e) => write!(f, "cannot open log file {}: {e}", path.display()),
            Self::Other(exe, e) => write!(f, "cannot start {exe:?}: {e}"),
            Self::Containment(why) => write!(f, "cannot contain the job: {why}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Exit code as whirr reports it: the process's own code, or minus the signal number
/// when a signal ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => -sig,
        (None, None) => -1,
    }
}

/// A spawned job: the leader of its own process group (pgid == pid), in its containment.
#[derive(Debug)]
pub struct JobProcess {
    child: Child,
    pgid: Pid,
    code: Option<i32>,
    job_box: JobBox,
    finished: bool,
    /// Copies the job's output into its log until [`Self::end_output`].
    output: Option<OutputCopier>,
}

impl JobProcess {
    /// Starts the job; every way it can fail to start is a [`SpawnError`].
    pub fn spawn(spec: &JobSpec) -> Result<Self, SpawnError> {
        let Some(program) = spec.argv.first() else {
            return Err(SpawnError::EmptyArgv);
        };
        if program.is_empty() {
            return Err(SpawnError::EmptyArgv);
        }
        if !spec.workdir.is_dir() {
            return Err(SpawnError::MissingWorkdir(spec.workdir.clone()));
        }
        let log = open_log(&spec.log_path)?;
        // One pipe for both streams (they interleave as in one file); close-on-exec, so
        // only this job gets its ends.
        let (pipe_out, pipe_in) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| SpawnError::Other(program.clone(), io::Error::from(e)))?;
        let pipe_err = pipe_in
            .try_clone()
            .map_err(|e| SpawnError::Other(program.clone(), e))?;
        let job_id = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "WHIRR_JOB_ID")
            .map_or("x", |(_, v)| v.as_str());
        let worker = cgroup::worker_box().map_err(|why| {
            let err = SpawnError::Containment(why);
            note_in_log(&spec.log_path, &err);
            err
        })?;
        let unenforced = worker.unenforced(spec.memory_bytes, spec.cpus);
        if !unenforced.is_empty() {
            // Run it unlimited rather than not at all, and say so where its user looks.
            if let Ok(mut file) = open_log(&spec.log_path) {
                let _ = writeln!(
                    file,
                    "whirr: {} not enforced on this worker; the job runs without them. \
                     Containment: {}",
                    unenforced.join("/"),
                    worker.describe()
                );
            }
        }
        let memory = spec
            .memory_bytes
            .filter(|_| !unenforced.contains(&"--memory"));
        let cpus = spec.cpus.filter(|_| !unenforced.contains(&"--cpus"));
        let mut job_box = worker
            .new_job(job_id)
            .and_then(|mut b| match b.limit(memory, cpus) {
                Ok(()) => Ok(b),
                Err(e) => {
                    b.finish();
                    Err(e)
                }
            })
            .map_err(|e| {
                let err = SpawnError::Containment(format!("cannot make its cgroup: {e}"));
                note_in_log(&spec.log_path, &err);
                err
            })?;
        let handshake = job_box.cgroup.is_some();

        let mut cmd = if handshake {
            // The shell execs the program: check it here, for the same clear errors.
            check_program(program, spec).inspect_err(|err| {
                note_in_log(&spec.log_path, err);
                job_box.finish();
            })?;
            let mut cmd = Command::new("/bin/sh");
            cmd.args(HANDSHAKE).args(&spec.argv).stdin(Stdio::piped());
            cmd
        } else {
            let mut cmd = Command::new(program);
            cmd.args(&spec.argv[1..]).stdin(Stdio::null());
            cmd
        };
        cmd.current_dir(&spec.workdir)
            .stdout(Stdio::from(pipe_in))
            .stderr(Stdio::from(pipe_err));
        for key in &spec.env_remove {
            cmd.env_remove(key);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        cmd.env(cgroup::MARKER, &job_box.token);
        sys::isolate_job(&mut cmd);

        let spawned = cmd.spawn();
        // The worker's copies of the pipe's write end: closed, so that the end of the
        // job's output is the end of input.
        drop(cmd);
        if spawned.is_err() {
            job_box.finish();
        }
        let mut child = spawned.map_err(|e| {
            let err = match e.kind() {
                io::ErrorKind::NotFound => SpawnError::NotFound(program.clone()),
                io::ErrorKind::PermissionDenied => SpawnError::PermissionDenied(program.clone()),
                _ => SpawnError::Other(program.clone(), e),
            };
            note_in_log(&spec.log_path, &err);
            err
        })?;
        let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let stdin = child.stdin.take();
        if let Err(e) = job_box.adopt(pgid.as_raw()) {
            drop(stdin); // the shell reads end of input and exits, the job unrun
            let _ = child.wait();
            job_box.finish();
            let err = SpawnError::Containment(format!("cannot move it into its cgroup: {e}"));
            note_in_log(&spec.log_path, &err);
            return Err(err);
        }
        let mut job = Self {
            child,
            pgid,
            code: None,
            job_box,
            finished: false,
            output: None,
        };
        match OutputCopier::start(pipe_out, log, spec.max_output) {
            Ok(copier) => job.output = Some(copier),
            Err(e) => {
                // Nothing would read its output: the job would block on a full pipe.
                drop(stdin);
                let _ = job.kill();
                job.finish();
                let err = SpawnError::Other(program.clone(), e);
                note_in_log(&spec.log_path, &err);
                return Err(err);
            }
        }
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(b"go\n");
        }
        Ok(job)
    }

    /// Once the job's processes are gone ([`Self::end_leftovers`], [`Self::kill`]):
    /// copies what is left of its output (until end of input, at most [`DRAIN_LIMIT`]),
    /// writes the capped tail and closes the pipe. `output.log` is complete after it.
    pub fn end_output(&mut self) {
        if let Some(mut copier) = self.output.take() {
            copier.finish(DRAIN_LIMIT);
        }
    }

    /// What the whole job used (its cgroup's accounting), once it is over; None without
    /// a cgroup.
    pub fn usage(&self) -> Option<JobUsage> {
        self.job_box.usage.clone()
    }

    /// The leader's pid (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The leader's exit code once it has exited; never blocks.
    pub fn poll(&mut self) -> io::Result<Option<i32>> {
        if self.code.is_none() {
            self.code = self.child.try_wait()?.map(exit_code);
        }
        Ok(self.code)
    }

    /// Waits up to `limit` for the leader to exit; `None` if it is still running.
    #[cfg(test)]
    pub fn wait_for(&mut self, limit: Duration) -> io::Result<Option<i32>> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(code) = self.poll()? {
                return Ok(Some(code));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Sends `sig` to every process of the job: its group and whatever its containment
    /// holds besides (setsid'd descendants); a group already gone is fine.
    pub fn signal_group(&self, sig: Signal) -> io::Result<()> {
        self.job_box.signal(sig);
        match killpg(self.pgid, sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// Whether a live (not zombie) process of the job is still running.
    pub fn group_alive(&self) -> bool {
        // kill(0) also succeeds for zombies, which may linger when the machine's init
        // does not reap orphans quickly; only then is /proc scanned to tell them apart.
        (killpg(self.pgid, None).is_ok() && group_has_live_member(self.pgid.as_raw()))
            || self.job_box.alive()
    }

    /// Ends the whole group: SIGTERM, up to `grace` for everyone to leave, then
    /// SIGKILL. Returns the leader's exit code.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<i32> {
        self.signal_group(Signal::SIGTERM)?;
        // A stopped process only acts on SIGTERM once continued.
        self.signal_group(Signal::SIGCONT)?;
        self.wait_group(grace)?;
        self.kill()
    }

    /// SIGKILLs the group at once and reaps the leader. Returns its exit code.
    pub fn kill(&mut self) -> io::Result<i32> {
        self.job_box.kill();
        if self.group_alive() {
            self.signal_group(Signal::SIGKILL)?;
        }
        match self.code {
            Some(code) => Ok(code),
            None => {
                let code = exit_code(self.child.wait()?);
                self.code = Some(code);
                Ok(code)
            }
        }
    }

    /// After the leader exited by itself: ends whatever it left running in its group,
    /// so no process outlives its job.
    pub fn end_leftovers(&mut self, grace: Duration) -> io::Result<()> {
        if self.poll()?.is_some() && self.group_alive() {
            self.terminate(grace)?;
        }
        self.finish();
        Ok(())
    }

    /// Kills whatever of the job is left (bounded wait), reaps the orphans the worker
    /// adopted, removes its cgroup. Once.
    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.job_box.finish();
        }
    }

    /// Waits up to `limit` for the leader to exit and the group to empty.
    fn wait_group(&mut self, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.poll()?.is_some() && !self.group_alive() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(());
            }
            thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_POLL);
        }
    }
}

impl Drop for JobProcess {
    /// Safety net: a job handle dropped on an unexpected path takes its group with it.
    fn drop(&mut self) {
        if !self.finished && (self.code.is_none() || self.group_alive()) {
            let _ = self.kill();
        }
        self.finish();
        self.end_output();
    }
}

/// Scans `/proc` for a process of group `pgid` that is not a zombie. Without a
/// readable `/proc` it assumes one exists (the caller then waits or SIGKILLs).
fn group_has_live_member(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // Fields after the command name (which may contain spaces and parentheses):
        // state ppid pgrp ...
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(pgid) && state != Some("Z") && state != Some("X")
    })
}

/// Fails the way spawning `program` directly would (not found, not executable), for a
/// job started through the handshake shell.
fn check_program(program: &str, spec: &JobSpec) -> Result<(), SpawnError> {
    let executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = spec.workdir.join(program);
        if !path.exists() {
            return Err(SpawnError::NotFound(program.to_owned()));
        }
        if !executable(&path) {
            return Err(SpawnError::PermissionDenied(program.to_owned()));
        }
        return Ok(());
    }
    let search = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned());
    let candidates: Vec<PathBuf> = search
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(program))
        .collect();
    if candidates.iter().any(|p| executable(p)) {
        Ok(())
    } else if candidates.iter().any(|p| p.is_file()) {
        Err(SpawnError::PermissionDenied(program.to_owned()))
    } else {
        Err(SpawnError::NotFound(program.to_owned()))
    }
}

/// Opens a job's `output.log` for appending. The run directory and the log are the
/// owner's only (0700/0600) whatever the umask: a job's output and environment are
/// nobody else's business (docs/security.md).
fn open_log(path: &Path) -> Result<File, SpawnError> {
    if let Some(dir) = path.parent() {
        private_dirs(dir).map_err(|e| SpawnError::Log(path.to_path_buf(), e))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| SpawnError::Log(path.to_path_buf(), e))
}

/// `mkdir -p` whose new directories are 0700 (existing ones are left as they are).
pub fn private_dirs(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Leaves the reason a job did not start in its log, where a user looks first.
pub fn note_in_log(path: &Path, err: &SpawnError) {
    if matches!(err, SpawnError::Log(..)) {
        return;
    }
    if let Ok(mut file) = open_log(path) {
        let _ = writeln!(file, "whirr-worker: job did not start: {err}");
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn spec(dir: &Path, argv: &[&str]) -> JobSpec {
        JobSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            workdir: dir.to_path_buf(),
            env: vec![("WHIRR_TEST_VAR".into(), "hello".into())],
            env_remove: vec![],
            log_path: dir.join("runs/job-1/output.log"),
            max_output: None,
            memory_bytes: None,
            cpus: None,
        }
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "whirr-worker-test-{}-{name}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn run(argv: &[&str]) -> (i32, String) {
        let dir = tempdir("run");
        let s = spec(&dir, argv);
        let mut job = JobProcess::spawn(&s).expect("spawns");
        let code = job
            .wait_for(Duration::from_secs(20))
            .expect("waits")
            .expect("exits");
        job.end_output();
        let log = fs::read_to_string(&s.log_path).expect("log");
        let _ = fs::remove_dir_all(&dir);
        (code, log)
    }

    /// The log's first line once the copier has written it (bounded wait).
    fn first_log_line(path: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = fs::read_to_string(path).unwrap_or_default();
            if let Some((line, _)) = log.split_once('\n') {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "no line in the log: {log:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn pid_alive(pid: i32) -> bool {
        // A zombie still "exists" for kill(0); read its state instead.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }

    #[test]
    fn exit_codes_are_reported() {
        assert_eq!(run(&["true"]).0, 0);
        assert_eq!(run(&["sh", "-c", "exit 3"]).0, 3);
    }

    #[test]
    fn output_and_env_reach_the_log() {
        let (code, log) = run(&["sh", "-c", "echo out $WHIRR_TEST_VAR; echo err >&2"]);
        assert_eq!(code, 0);
        assert!(log.contains("out hello"), "{log}");
        assert!(log.contains("err"), "{log}");
    }

    #[test]
    fn run_dir_and_log_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempdir("modes");
        // A process umask that would leave both readable by everyone (022) is what a
        // worker usually runs with; the modes must not depend on it.
        let log = dir.join("runs/job-9/output.log");
        drop(open_log(&log).expect("opens"));
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&log), 0o600);
        assert_eq!(mode(log.parent().expect("run dir")), 0o700);
        assert_eq!(mode(&dir.join("runs")), 0o700);
    }

    #[test]
    fn signalled_job_reports_minus_the_signal() {
        assert_eq!(run(&["sh", "-c", "kill -TERM $$"]).0, -15);
        assert_eq!(run(&["sh", "-c", "kill -KILL $$"]).0, -9);
    }

    #[test]
    fn job_leads_its_own_session() {
        let (code, log) = run(&["sh", "-c", "ps -o pid=,pgid=,sid= -p $$"]);
        assert_eq!(code, 0);
        let ids: Vec<&str> = log.split_whitespace().collect();
        assert_eq!(ids.len(), 3, "{log}");
        assert!(ids.iter().all(|id| *id == ids[0]), "{log}");
    }

    #[test]
    fn empty_argv_is_an_error() {
        let dir = tempdir("empty");
        let err = JobProcess::spawn(&spec(&dir, &[])).expect_err("must fail");
        assert!(matches!(err, SpawnError::EmptyArgv));
        let err = JobProcess::spawn(&spec(&dir, &[""])).expect_err("must fail");
        assert!(matches!(err, SpawnError::EmptyArgv));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_executable_is_an_error_noted_in_the_log() {
        let dir = tempdir("noexe");
        let s = spec(&dir, &["whirr-no-such-program-xyz", "--flag"]);
        let err = JobProcess::spawn(&s).expect_err("must fail");
        assert!(matches!(err, SpawnError::NotFound(_)), "{err}");
        assert!(err.to_string().contains("whirr-no-such-program-xyz"));
        let log = fs::read_to_string(&s.log_path).expect("log");
        assert!(log.contains("executable not found"), "{log}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn non_executable_file_is_permission_denied() {
        let dir = tempdir("noperm");
        let script = dir.join("script.sh");
        fs::write(&script, "#!/bin/sh\necho hi\n").expect("write");
        let s = spec(&dir, &[script.to_str().expect("utf8")]);
        let err = JobProcess::spawn(&s).expect_err("must fail");
        assert!(matches!(err, SpawnError::PermissionDenied(_)), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_workdir_is_an_error() {
        let dir = tempdir("nowd");
        let mut s = spec(&dir, &["true"]);
        s.workdir = dir.join("does-not-exist");
        let err = JobProcess::spawn(&s).expect_err("must fail");
        assert!(matches!(err, SpawnError::MissingWorkdir(_)), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Spawns a shell that starts a grandchild and prints its pid to the log.
    fn spawn_with_grandchild(dir: &Path, trap_term: bool) -> (JobProcess, i32) {
        let script = if trap_term {
            // Leader and grandchild both ignore SIGTERM: only SIGKILL ends them.
            "trap '' TERM; sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' & echo $!; wait"
        } else {
            "sleep 300 & echo $!; wait"
        };
        let s = spec(dir, &["sh", "-c", script]);
        let job = JobProcess::spawn(&s).expect("spawns");
        let pid = first_log_line(&s.log_path).trim().parse().expect("a pid");
        (job, pid)
    }

    #[test]
    fn terminate_kills_grandchildren() {
        let dir = tempdir("grand");
        let (mut job, grandchild) = spawn_with_grandchild(&dir, false);
        assert!(pid_alive(grandchild));
        let code = job.terminate(Duration::from_secs(5)).expect("terminates");
        assert_eq!(code, -15);
        assert!(!job.group_alive());
        assert!(!pid_alive(grandchild));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn terminate_escalates_to_sigkill_after_grace() {
        let dir = tempdir("stubborn");
        let (mut job, grandchild) = spawn_with_grandchild(&dir, true);
        let started = Instant::now();
        let code = job
            .terminate(Duration::from_millis(300))
            .expect("terminates");
        assert_eq!(code, -9);
        assert!(started.elapsed() >= Duration::from_millis(300));
        // SIGKILL is delivered asynchronously to the grandchild; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(grandchild) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(grandchild));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn leftovers_of_a_finished_job_are_ended() {
        let dir = tempdir("leftover");
        let s = spec(&dir, &["sh", "-c", "sleep 300 & echo $!"]);
        let mut job = JobProcess::spawn(&s).expect("spawns");
        let code = job
            .wait_for(Duration::from_secs(10))
            .expect("waits")
            .expect("leader exits");
        assert_eq!(code, 0);
        let grandchild: i32 = first_log_line(&s.log_path).trim().parse().expect("pid");
        assert!(pid_alive(grandchild));
        job.end_leftovers(Duration::from_secs(5)).expect("ends");
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(grandchild) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(grandchild));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn dropping_a_running_job_kills_it() {
        let dir = tempdir("drop");
        let (job, grandchild) = spawn_with_grandchild(&dir, false);
        let leader = job.pid() as i32;
        drop(job);
        assert!(!pid_alive(leader));
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(grandchild) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(!pid_alive(grandchild));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stdout_and_stderr_interleave_in_the_log_in_order() {
        let (code, log) = run(&[
            "sh",
            "-c",
            "for i in 1 2 3; do echo out$i; echo err$i >&2; done",
        ]);
        assert_eq!(code, 0);
        assert_eq!(log, "out1\nerr1\nout2\nerr2\nout3\nerr3\n");
    }

    #[test]
    fn output_past_the_cap_keeps_its_head_and_tail() {
        let dir = tempdir("cap");
        let mut s = spec(
            &dir,
            &["sh", "-c", "head -c 3000000 /dev/zero; echo; echo last"],
        );
        s.max_output = Some(1 << 20);
        let mut job = JobProcess::spawn(&s).expect("spawns");
        job.wait_for(Duration::from_secs(20))
            .expect("waits")
            .expect("exits");
        job.end_leftovers(Duration::from_secs(5)).expect("ends");
        job.end_output();
        let log = fs::read(&s.log_path).expect("log");
        // Head, newline, two marker lines, tail.
        let markers = log.iter().filter(|&&b| b == b'[').count();
        assert_eq!(markers, 2, "{}", String::from_utf8_lossy(&log[..100]));
        assert!(log[..768 * 1024].iter().all(|&b| b == 0));
        assert!(log.ends_with(b"\nlast\n"));
        let text = String::from_utf8_lossy(&log);
        assert!(text.contains("(1951430 bytes) of output dropped; its last 256.0 KiB follow.\n"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_leftover_holding_the_pipe_does_not_hold_the_job_end() {
        // The leader leaves a child that holds the pipe open: ending the leftovers
        // ends it, and with it the output (not the copier's limit, nor 300 s).
        let dir = tempdir("held");
        let s = spec(&dir, &["sh", "-c", "echo started; sleep 300 & echo done"]);
        let mut job = JobProcess::spawn(&s).expect("spawns");
        job.wait_for(Duration::from_secs(10))
            .expect("waits")
            .expect("exits");
        let started = Instant::now();
        job.end_leftovers(Duration::from_secs(1)).expect("ends");
        job.end_output();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let log = fs::read_to_string(&s.log_path).expect("log");
        assert_eq!(log, "started\ndone\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
