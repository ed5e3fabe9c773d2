//! The only `unsafe` in the crate: the `pre_exec` hook that puts a job into its own
//! session and ties its life to the worker's.
//!
//! Kept tiny on purpose. Everything else in the crate is `#![forbid(unsafe_code)]`.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::unistd::{getppid, setsid, Pid};

/// Makes the child of `cmd` a session and process-group leader (so the whole job can be
/// signalled with `killpg(pid)`) and asks the kernel to SIGKILL it when the worker dies.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the
/// process: the caller must spawn from a thread that lives as long as the worker (the
/// main thread does).
pub fn isolate_job(cmd: &mut Command) {
    let parent = Pid::this();
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe calls are allowed. It calls setsid(2), prctl(2) and getppid(2),
    // all async-signal-safe raw syscalls, captures only a `Pid` (Copy), and neither
    // allocates nor takes locks: errors are built with `from_raw_os_error`, which does
    // not allocate.
    unsafe {
        cmd.pre_exec(move || {
            setsid().map_err(errno)?;
            prctl::set_pdeathsig(Signal::SIGKILL).map_err(errno)?;
            // The worker may have died between fork and prctl; then the death signal
            // was already missed and the child was reparented. Do not start the job.
            if getppid() != parent {
                return Err(io::Error::from_raw_os_error(Errno::ESRCH as i32));
            }
            Ok(())
        });
    }
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}
