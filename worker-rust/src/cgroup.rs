//! Containment of a job's processes, as the Python worker's `whirr.containment`: a
//! cgroup v2 per job where the machine allows it, else the job's process group plus a
//! per-job marker in its environment, with the worker a child subreaper.
//!
//! * cgroup v2: the worker makes `whirr-worker-<pid>/` in a writable cgroup v2 directory
//!   (`WHIRR_CGROUP_DIR`, else its own cgroup from `/proc/self/cgroup`) and one
//!   `job-<id>-<n>/` in it per job. The job's first process is a shell that waits on its
//!   stdin until the worker has written its pid to `cgroup.procs`, then execs the job:
//!   everything the job starts is born inside, setsid'd or not. `cgroup.kill` ends it.
//! * process group + subreaper: the job's environment holds
//!   `WHIRR_JOB_TOKEN=<worker token>.<job token>`; ending the job kills its group and every
//!   process whose `/proc/<pid>/environ` holds the token (until none is left) and reaps
//!   the ones the worker adopted as their subreaper. Limits: a process that clears its
//!   environment or changes user is found only through the process group; a setsid'd
//!   orphan that exits by itself while its job runs stays a zombie until the worker exits.
//!
//! `WHIRR_CONTAINMENT` = `auto` (default), `cgroup` (refuse to run without) or `pgroup`.
#![forbid(unsafe_code)]

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::protocol::JobUsage;

pub const MARKER: &str = "WHIRR_JOB_TOKEN";
const MODE_ENV: &str = "WHIRR_CONTAINMENT";
const DIR_ENV: &str = "WHIRR_CGROUP_DIR";
const LIMIT_CONTROLLERS: [&str; 2] = ["memory", "cpu"];
/// How long ending a job waits for its cgroup to empty / its marked processes to go.
pub const END_WAIT: Duration = Duration::from_secs(5);

/// The containment of this worker process.
pub struct WorkerBox {
    /// Where the job cgroups go (`whirr-worker-<pid>`); None without cgroups.
    pub dir: Option<PathBuf>,
    /// Every job's marker starts with it (`<token>.`).
    pub token: String,
    description: String,
    /// Of memory/cpu: the limits job cgroups here can take.
    pub controllers: Vec<String>,
    jobs: AtomicU64,
}

static BOX: OnceLock<Result<WorkerBox, String>> = OnceLock::new();

/// This worker's containment, set up on first use (the reaper's start does it first).
pub fn worker_box() -> Result<&'static WorkerBox, String> {
    BOX.get_or_init(WorkerBox::open)
        .as_ref()
        .map_err(Clone::clone)
}

impl WorkerBox {
    fn open() -> Result<Self, String> {
        let token = random_hex(8);
        let mode = std::env::var(MODE_ENV)
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let mode = if mode.is_empty() {
            "auto".to_owned()
        } else {
            mode
        };
        if !["auto", "cgroup", "pgroup"].contains(&mode.as_str()) {
            return Err(format!(
                "{MODE_ENV} must be auto, cgroup or pgroup, not {mode:?}"
            ));
        }
        let pgroup = |why: String| {
            let _ = nix::sys::prctl::set_child_subreaper(true);
            Ok(Self {
                dir: None,
                token: token.clone(),
                description: format!(
                    "process group + subreaper ({why}); no accounting; --memory/--cpus not \
                     enforced (a job asking runs unlimited; its log says so)"
                ),
                controllers: Vec::new(),
                jobs: AtomicU64::new(0),
            })
        };
        if mode == "pgroup" {
            return pgroup(format!("{MODE_ENV}=pgroup"));
        }
        let named = std::env::var(DIR_ENV)
            .ok()
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        let base = named.clone().map(PathBuf::from).or_else(own_cgroup_dir);
        if let Some(why) = unusable(base.as_deref(), named.is_some()) {
            if mode == "cgroup" || named.is_some() {
                return Err(format!("cannot contain jobs in a cgroup v2: {why}"));
            }
            return pgroup(why);
        }
        let base = base.expect("checked usable");
        remove_stale_worker_cgroups(&base);
        let (controllers, missing) = controllers(&base);
        let dir = base.join(format!("whirr-worker-{}", std::process::id()));
        fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot set up the worker's cgroup {}: {e}", dir.display()))?;
        for name in &controllers {
            let _ = write(&dir, "cgroup.subtree_control", &format!("+{name}"));
        }
        let mut parts = vec!["kill", "cpu time"];
        if controllers.iter().any(|c| c == "memory") {
            parts.extend(["memory peak", "--memory limits"]);
        }
        if controllers.iter().any(|c| c == "cpu") {
            parts.push("--cpus limits");
        }
        let mut description = format!("cgroup v2 in {} ({})", base.display(), parts.join(", "));
        if !missing.is_empty() {
            description.push_str(&format!("; {missing}"));
        }
        Ok(Self {
            dir: Some(dir),
            token,
            description,
            controllers,
            jobs: AtomicU64::new(0),
        })
    }

    /// Which containment holds the jobs, in words (printed at start).
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The limits asked for that jobs here cannot be held to (as `submit` options).
    pub fn unenforced(&self, memory_bytes: Option<u64>, cpus: Option<f64>) -> Vec<&'static str> {
        let has = |c: &str| self.controllers.iter().any(|h| h == c);
        let mut missing = Vec::new();
        if memory_bytes.is_some() && !has("memory") {
            missing.push("--memory");
        }
        if cpus.is_some() && !has("cpu") {
            missing.push("--cpus");
        }
        missing
    }

    /// One job's containment (its cgroup is made here).
    pub fn new_job(&self, job_id: &str) -> io::Result<JobBox> {
        let n = self.jobs.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("{}.{}", self.token, random_hex(8));
        let cgroup = match &self.dir {
            Some(dir) => {
                let safe: String = job_id
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .take(40)
                    .collect();
                let path = dir.join(format!("job-{safe}-{n}"));
                fs::create_dir(&path)?;
                Some(path)
            }
            None => None,
        };
        Ok(JobBox {
            token,
            cgroup,
            pgid: 0,
            usage: None,
        })
    }
}

/// The worker is gone: kill every job's processes and remove its cgroups. Run by the
/// reaper process with what the worker passed it.
pub fn end_everything(dir: Option<&Path>, token_prefix: &str) {
    if let Some(dir) = dir {
        let _ = write(dir, "cgroup.kill", "1");
        remove_tree(dir, Instant::now() + END_WAIT);
    }
    if !token_prefix.is_empty() {
        kill_marked(
            &format!("{token_prefix}."),
            true,
            Instant::now() + END_WAIT,
            0,
        );
    }
}

/// One job's containment: its marker and its cgroup (None without).
#[derive(Debug)]
pub struct JobBox {
    pub token: String,
    pub cgroup: Option<PathBuf>,
    pub pgid: i32,
    /// What the whole job used, read from its cgroup as it ended (None without one).
    pub usage: Option<JobUsage>,
}

impl JobBox {
    /// Sets `memory.max` / `cpu.max` (the caller left out what the cgroup cannot take).
    pub fn limit(&self, memory_bytes: Option<u64>, cpus: Option<f64>) -> io::Result<()> {
        let Some(cgroup) = &self.cgroup else {
            return Ok(());
        };
        if let Some(bytes) = memory_bytes {
            write(cgroup, "memory.max", &bytes.to_string())?;
            let _ = write(cgroup, "memory.swap.max", "0"); // no swapping past the limit
        }
        if let Some(cpus) = cpus.filter(|c| c.is_finite() && *c > 0.0) {
            let quota = ((cpus * 100_000.0).round() as u64).max(1000);
            write(cgroup, "cpu.max", &format!("{quota} 100000"))?;
        }
        Ok(())
    }

    /// Moves `pid` (the job's first process, before it execs) into the cgroup.
    pub fn adopt(&mut self, pid: i32) -> io::Result<()> {
        self.pgid = pid;
        match &self.cgroup {
            Some(cgroup) => write(cgroup, "cgroup.procs", &pid.to_string()),
            None => Ok(()),
        }
    }

    /// The live processes of the job that containment sees.
    pub fn members(&self) -> Vec<i32> {
        match &self.cgroup {
            Some(cgroup) => read(cgroup, "cgroup.procs")
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
            None => marked(&self.token, false)
                .into_iter()
                .filter(|p| p.live())
                .map(|p| p.pid)
                .collect(),
        }
    }

    /// Whether any process of the job is still running.
    pub fn alive(&self) -> bool {
        match &self.cgroup {
            Some(cgroup) => populated(cgroup),
            None => !self.members().is_empty(),
        }
    }

    /// `sig` to every process of the job (its group is signalled by the caller).
    pub fn signal(&self, sig: Signal) {
        for pid in self.members() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
    }

    /// SIGKILL every process of the job, at once where a cgroup holds them.
    pub fn kill(&self) {
        if let Some(cgroup) = &self.cgroup {
            let _ = write(cgroup, "cgroup.kill", "1");
        }
        self.signal(Signal::SIGKILL);
    }

    /// The job is over: kill what is left of it, wait (bounded) until nothing is, reap
    /// the orphans the worker adopted, record what it used, remove the cgroup.
    pub fn finish(&mut self) {
        let deadline = Instant::now() + END_WAIT;
        if self.pgid > 1 {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
        match self.cgroup.take() {
            Some(cgroup) => {
                let _ = write(&cgroup, "cgroup.kill", "1");
                wait_empty(&cgroup, deadline);
                self.usage = read_usage(&cgroup);
                remove_tree(&cgroup, deadline);
            }
            None => kill_marked(&self.token, false, deadline, self.pgid),
        }
    }
}

fn own_cgroup_dir() -> Option<PathBuf> {
    let own_text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own_text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .to_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.contains(" - cgroup2 ") || fields.len() < 5 {
            continue;
        }
        let (root, point) = (fields[3].trim_end_matches('/'), fields[4]);
        if own == fields[3] || own.starts_with(&format!("{root}/")) {
            let rest = own[root.len()..].trim_start_matches('/');
            let path = Path::new(point).join(rest);
            if path.is_dir() {
                return Some(path);
            }
        }
    }
    None
}

fn unusable(base: Option<&Path>, named: bool) -> Option<String> {
    let Some(base) = base else {
        return Some("no cgroup v2 hierarchy is mounted for this process".into());
    };
    let where_ = if named {
        format!("{DIR_ENV}={}", base.display())
    } else {
        base.display().to_string()
    };
    if !base.join("cgroup.procs").is_file() {
        return Some(format!("{where_} is not a cgroup v2 directory"));
    }
    let probe = base.join(format!(
        "whirr-probe-{}-{}",
        std::process::id(),
        random_hex(4)
    ));
    if let Err(e) = fs::create_dir(&probe) {
        return Some(format!(
            "cannot make a cgroup in {where_} ({e}; not delegated to this user)"
        ));
    }
    let kill_file = probe.join("cgroup.kill").exists();
    let _ = fs::remove_dir(&probe);
    if !kill_file {
        return Some("the kernel has no cgroup.kill (Linux 5.14 or later needed)".into());
    }
    None
}

/// The limit controllers job cgroups will have (enabling those offered), and a note on
/// the missing ones.
fn controllers(base: &Path) -> (Vec<String>, String) {
    let available = read(base, "cgroup.controllers");
    for name in LIMIT_CONTROLLERS {
        let passed = read(base, "cgroup.subtree_control");
        if available.split_whitespace().any(|c| c == name)
            && !passed.split_whitespace().any(|c| c == name)
        {
            let _ = write(base, "cgroup.subtree_control", &format!("+{name}"));
        }
    }
    let passed = read(base, "cgroup.subtree_control");
    let usable: Vec<String> = LIMIT_CONTROLLERS
        .iter()
        .filter(|c| passed.split_whitespace().any(|p| p == **c))
        .map(|c| (*c).to_owned())
        .collect();
    let missing: Vec<&str> = LIMIT_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !usable.iter().any(|u| u == c))
        .collect();
    let note = if missing.is_empty() {
        String::new()
    } else {
        format!(
            "no {} controller in {} (bound to cgroup v1, or not delegated)",
            missing.join("/"),
            base.display()
        )
    };
    (usable, note)
}

/// A process as `/proc/<pid>/stat` shows it.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    pub state: char,
}

impl Proc {
    fn live(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

pub fn stat(pid: i32) -> Option<Proc> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
    })
}

fn pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

fn carries(pid: i32, needle: &[u8]) -> bool {
    let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let mut framed = Vec::with_capacity(env.len() + 2);
    framed.push(0);
    framed.extend_from_slice(&env);
    framed.push(0);
    framed.windows(needle.len()).any(|w| w == needle)
}

/// Processes whose environment holds `WHIRR_JOB_TOKEN=token` (or starts so, `prefix`).
pub fn marked(token: &str, prefix: bool) -> Vec<Proc> {
    let mut needle = format!("\0{MARKER}={token}").into_bytes();
    if !prefix {
        needle.push(0);
    }
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    pids()
        .into_iter()
        .filter(|&pid| pid != me && carries(pid, &needle))
        .filter_map(stat)
        .collect()
}

/// SIGKILLs the processes marked with `token` until none is left (or `deadline`),
/// reaping those this process adopted and zombies left in group or session `pgid`.
pub fn kill_marked(token: &str, prefix: bool, deadline: Instant, pgid: i32) {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    loop {
        let live: Vec<Proc> = marked(token, prefix)
            .into_iter()
            .filter(Proc::live)
            .collect();
        for p in &live {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        let mut adopted: Vec<i32> = live
            .iter()
            .filter(|p| p.ppid == me)
            .map(|p| p.pid)
            .collect();
        if pgid > 1 {
            adopted.extend(pids().into_iter().filter_map(stat).filter_map(|p| {
                (p.ppid == me && p.state == 'Z' && (p.pgid == pgid || p.sid == pgid))
                    .then_some(p.pid)
            }));
        }
        for pid in adopted {
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if live.is_empty() || Instant::now() >= deadline {
            return;
        }
    }
}

/// What the job of `cgroup` used: CPU time (`cpu.stat`, in every cgroup v2) and its
/// memory peak where the memory controller accounts it (`memory.peak`, Linux 5.19+).
/// None when `cpu.stat` cannot be read.
pub fn read_usage(cgroup: &Path) -> Option<JobUsage> {
    let stat = read(cgroup, "cpu.stat");
    let micros = |key: &str| {
        stat.lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    let seconds = |key: &str| micros(key).map(|us| us as f64 / 1e6);
    Some(JobUsage {
        cpu_seconds: seconds("usage_usec")?,
        cpu_user_seconds: seconds("user_usec"),
        cpu_system_seconds: seconds("system_usec"),
        memory_peak_bytes: read(cgroup, "memory.peak").trim().parse().ok(),
    })
}

/// Removes the empty `whirr-worker-<pid>` cgroups in `base` whose worker is gone (one
/// killed -9 with its reaper never removed its own). One of a live worker, or still
/// holding a process, stays: rmdir refuses a populated cgroup, and this never waits.
pub fn remove_stale_worker_cgroups(base: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(base) else {
        return removed;
    };
    let own = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("whirr-worker-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || pid == own || pid_alive(pid) {
            continue;
        }
        if remove_if_empty(&entry.path()) {
            removed.push(entry.path());
        }
    }
    removed
}

/// Whether a process `pid` exists (another user's counts: EPERM).
fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        kill(Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// rmdir `cgroup` and its child cgroups, bottom-up, those with no process now.
fn remove_if_empty(cgroup: &Path) -> bool {
    if let Ok(entries) = fs::read_dir(cgroup) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_if_empty(&entry.path());
            }
        }
    }
    fs::remove_dir(cgroup).is_ok()
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn write(dir: &Path, name: &str, value: &str) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(dir.join(name))
        .and_then(|mut f| io::Write::write_all(&mut f, value.as_bytes()))
}

fn populated(cgroup: &Path) -> bool {
    match read(cgroup, "cgroup.events")
        .lines()
        .find_map(|l| l.strip_prefix("populated "))
    {
        Some(value) => value.trim() != "0",
        None => cgroup.is_dir() && !read(cgroup, "cgroup.procs").trim().is_empty(),
    }
}

fn wait_empty(cgroup: &Path, deadline: Instant) {
    let mut pause = Duration::from_millis(1);
    while populated(cgroup) && Instant::now() < deadline {
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Removes `cgroup` and its children (bottom-up) once each is empty.
pub fn remove_tree(cgroup: &Path, deadline: Instant) {
    if let Ok(entries) = fs::read_dir(cgroup) {
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path(), deadline);
            }
        }
    }
    wait_empty(cgroup, deadline);
    let _ = fs::remove_dir(cgroup);
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let filled = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if filled.is_err() {
        // No /dev/urandom: the time and pid still make a marker unique enough per host.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = nanos ^ (u128::from(std::process::id()) << 64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_markers_differ() {
        assert_ne!(random_hex(8), random_hex(8));
        assert_eq!(random_hex(8).len(), 16);
    }

    #[test]
    fn usage_is_read_from_cpu_stat_and_memory_peak() {
        let dir = crate::testdirs::tempdir("usage");
        fs::write(
            dir.join("cpu.stat"),
            "usage_usec 1500000\nuser_usec 1250000\nsystem_usec 250000\nnr_periods 0\n",
        )
        .unwrap();
        let usage = read_usage(&dir).expect("usage");
        assert_eq!(usage.cpu_seconds, 1.5);
        assert_eq!(usage.cpu_user_seconds, Some(1.25));
        assert_eq!(usage.cpu_system_seconds, Some(0.25));
        assert_eq!(usage.memory_peak_bytes, None); // no memory controller
        fs::write(dir.join("memory.peak"), "67108864\n").unwrap();
        assert_eq!(read_usage(&dir).unwrap().memory_peak_bytes, Some(64 << 20));
        fs::remove_file(dir.join("cpu.stat")).unwrap();
        assert_eq!(read_usage(&dir), None);
    }

    #[test]
    fn only_empty_cgroups_of_gone_workers_are_removed() {
        let base = crate::testdirs::tempdir("stale");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let live = std::process::id(); // this test process: alive
        let stale = base.join(format!("whirr-worker-{gone}"));
        fs::create_dir_all(stale.join("job-1-1")).unwrap();
        let busy = base.join("whirr-worker-1"); // init: alive
        fs::create_dir(&busy).unwrap();
        let own = base.join(format!("whirr-worker-{live}"));
        fs::create_dir(&own).unwrap();
        let other = base.join("whirr-probe-1");
        fs::create_dir(&other).unwrap();
        assert_eq!(remove_stale_worker_cgroups(&base), vec![stale.clone()]);
        assert!(!stale.exists() && busy.exists() && own.exists() && other.exists());
    }

    #[test]
    fn stat_reads_this_process() {
        let me = i32::try_from(std::process::id()).unwrap();
        let proc = stat(me).expect("own stat");
        assert_eq!(proc.pid, me);
        assert!(proc.live());
    }
}
