//! A guard process that kills the worker's job groups if the worker dies abruptly
//! (SIGKILL, the OOM killer), catching the grandchildren `PR_SET_PDEATHSIG` cannot:
//! the kernel sends the death signal to the job's leader only.
//!
//! The worker starts the guard once, as `whirr-worker __whirr_reaper` (its own binary,
//! re-executed through `/proc/self/exe`), and tells it over a pipe on the guard's stdin
//! which job groups are live: `+<pgid>` when a job starts, `-<pgid>` once it has ended.
//! When the pipe closes, the worker is gone, cleanly or not: the guard SIGKILLs every
//! group still listed, kills everything the worker's containment holds (`cgroup.kill` of
//! its cgroup, or the processes carrying its marker; both passed as arguments: `--cgroup
//! <dir>`, `--token <prefix>`), removes its cgroups and exits. The pipe's write end is
//! close-on-exec, so jobs never hold it open. The guard lives in a session of its own, so
//! a SIGHUP or SIGKILL of the worker's process group does not reach it.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::cgroup;

/// The hidden first argument that turns the binary into the guard.
pub const REAPER_ARG: &str = "__whirr_reaper";

/// The worker's handle on its guard process.
pub struct Reaper {
    child: Child,
    pipe: Mutex<Option<ChildStdin>>,
}

impl Reaper {
    /// Starts the guard process.
    /// Sets up the worker's containment first (and says which it is).
    pub fn start() -> io::Result<Self> {
        let containment = cgroup::worker_box().map_err(io::Error::other)?;
        say!("containment: {}", containment.describe());
        let mut command = Command::new("/proc/self/exe");
        command
            .arg(REAPER_ARG)
            .args(["--token", &containment.token]);
        if let Some(dir) = &containment.dir {
            command.arg("--cgroup").arg(dir);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Self {
            child,
            pipe: Mutex::new(pipe),
        })
    }

    /// A job group to kill if the worker dies.
    pub fn watch(&self, pgid: u32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// The job group has ended: stop tracking it.
    pub fn forget(&self, pgid: u32) {
        self.send(&format!("-{pgid}\n"));
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stdin) = pipe.as_mut() {
            if let Err(e) = stdin.write_all(line.as_bytes()) {
                say!("the reaper process is gone ({e}); jobs still die with the worker via PDEATHSIG, grandchildren may not");
                *pipe = None;
            }
        }
    }

    /// Normal shutdown: close the pipe and collect the guard.
    pub fn close(mut self) {
        drop(self.pipe.lock().unwrap_or_else(|p| p.into_inner()).take());
        let _ = self.child.wait();
    }
}

/// The guard's main: reads `+pgid`/`-pgid` lines until end of input, then SIGKILLs the
/// groups still listed.
pub fn run() -> ExitCode {
    // Leave the worker's session, so that a terminal's Ctrl+C or a signal to the
    // worker's process group does not take the guard down before it has done its job;
    // and ignore the polite stop signals (a handler that only sets a flag).
    let _ = nix::unistd::setsid();
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        let _ = signal_hook::flag::register(signal, ignored.clone());
    }
    let (mut dir, mut token) = (None::<PathBuf>, String::new());
    let mut args = std::env::args_os().skip(2);
    while let Some(flag) = args.next() {
        let value = args.next();
        match (flag.to_str(), value) {
            (Some("--cgroup"), Some(v)) => dir = Some(PathBuf::from(v)),
            (Some("--token"), Some(v)) => token = v.to_string_lossy().into_owned(),
            _ => {}
        }
    }
    let groups = read_groups(io::stdin().lock());
    for pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    cgroup::end_everything(dir.as_deref(), &token);
    ExitCode::SUCCESS
}

/// Folds the `+pgid`/`-pgid` lines of `input` into the set of live groups.
fn read_groups(input: impl BufRead) -> BTreeSet<i32> {
    let mut groups = BTreeSet::new();
    for line in input.split(b'\n') {
        let Ok(line) = line else { break };
        let Ok(text) = std::str::from_utf8(&line) else {
            continue;
        };
        let (op, number) = text.trim().split_at_checked(1).unwrap_or(("", ""));
        // Only real groups: 0 or a negative number would mean "my group" or "all".
        let Some(pgid) = number.parse::<i32>().ok().filter(|p| *p > 1) else {
            continue;
        };
        match op {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_added_and_removed_groups() {
        let input = b"+100\n+200\n-100\n+300\n" as &[u8];
        assert_eq!(read_groups(input), BTreeSet::from([200, 300]));
    }

    #[test]
    fn ignores_garbage_and_dangerous_ids() {
        let input = b"+0\n+-1\n+1\n*5\nhello\n+\n\xff\n+42" as &[u8];
        assert_eq!(read_groups(input), BTreeSet::from([42]));
    }
}
