//! `whirr-worker`: a small, safe worker for whirr servers.
//!
//! Unsafe code is denied crate-wide and forbidden in every module but `sys`, which
//! holds the one `pre_exec` hook process isolation needs.
#![deny(unsafe_code)]

#[macro_use]
mod log;
mod backoff;
mod cgroup;
mod cli;
mod client;
#[cfg(test)]
mod fake_files_server;
mod files_api;
mod files_mode;
mod lease_clock;
mod ledger;
mod output_cap;
mod process;
mod protocol;
mod reaper;
mod run_size;
mod settings;
mod ship_error;
mod ship_run;
mod shipping;
mod signals;
mod sizes;
mod sys;
#[cfg(test)]
mod testdirs;
mod worker;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use crate::client::Client;
use crate::reaper::Reaper;
use crate::settings::Settings;
use crate::signals::Shutdown;
use crate::worker::Worker;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == reaper::REAPER_ARG)
    {
        return reaper::run();
    }
    let args = cli::Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &cli::Args) -> Result<(), String> {
    let settings = Settings::from_args(args)?;
    let client = Client::new(&args.server, args.token())?;
    let worker_id = settings.worker_id.clone();
    let idle_client = client.clone();
    let registered = Arc::new(AtomicBool::new(false));
    let idle_registered = Arc::clone(&registered);
    // Second signal while idle: nothing to end, so unregister and leave at once.
    let shutdown = Shutdown::install(move |signal| {
        worker::unregister(&idle_client, &worker_id, &idle_registered);
        std::process::exit(128 + signal);
    })
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    // A containment asked for (WHIRR_CONTAINMENT=cgroup) and not to be had is refused here.
    cgroup::worker_box()?;
    // Started before any job; without it, PDEATHSIG still ends each job's leader.
    let reaper = match Reaper::start() {
        Ok(reaper) => Some(reaper),
        Err(e) => {
            say!("cannot start the reaper process ({e}); grandchildren of jobs may outlive a killed worker");
            None
        }
    };
    let worker = Worker::new(settings, client, shutdown, reaper.as_ref(), registered);
    let result = worker.run();
    worker.unregister();
    if let Some(reaper) = reaper {
        reaper.close();
    }
    result
}
