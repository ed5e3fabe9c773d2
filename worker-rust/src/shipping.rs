//! The shipper: one thread per worker that ships the files of its runs to the server
//! when the worker's data dir is not the server's (shipped mode). Every
//! [`TICK`] (at once when told something) it takes each live run one [`RunShip`] round
//! further; a run whose server cannot be reached waits with backoff, keeping its ledger.
//!
//! A job's end is flushed before the worker reports it: the worker marks the run ended
//! and waits (bounded) until everything, the final sizes included, is on the server.
//! What does not make it in time goes on in the background, and a worker that starts
//! resumes every ledger a previous one left behind.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::client::{ApiError, Client};
use crate::files_api::FilesApi;
use crate::ledger::{Ledger, LedgerStore};
use crate::ship_error::ShipError;
use crate::ship_run::{Round, RunShip};

/// How often live runs are looked at when nothing wakes the thread sooner.
pub const TICK: Duration = Duration::from_millis(250);
/// Longest wait between two tries against a server that cannot be reached.
const MAX_RETRY: Duration = Duration::from_secs(10);
/// How often a waiting worker looks at its stop condition.
const WAIT_CHECK: Duration = Duration::from_millis(50);

/// A run, by id and attempt.
type Key = (String, u32);

enum Command {
    /// Ship this run (its ledger is already on disk).
    Add(Box<Ledger>),
    /// The run's job ended: flush everything, then send the final sizes.
    End(Key),
}

/// Runs whose shipping is over (all on the server, or dropped), for waiting workers.
#[derive(Default)]
struct Done {
    keys: Mutex<BTreeSet<Key>>,
    changed: Condvar,
}

impl Done {
    fn mark(&self, key: Key) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
        self.changed.notify_all();
    }
}

/// The handle the worker keeps; the thread ends when it is dropped and nothing is left.
pub struct Shipper {
    tx: Sender<Command>,
    store: Arc<LedgerStore>,
    done: Arc<Done>,
}

impl Shipper {
    /// Starts the thread, resuming every ledger under `<data_dir>/shipping/` (the runs
    /// of a worker that was killed, or whose shipping had not finished).
    pub fn start(client: Client, data_dir: &Path) -> io::Result<Self> {
        Self::start_with(client, data_dir)
    }

    fn start_with<A: FilesApi + Send + 'static>(api: A, data_dir: &Path) -> io::Result<Self> {
        let store = Arc::new(LedgerStore::open(data_dir)?);
        let (tx, rx) = mpsc::channel();
        for mut ledger in store.load_all() {
            say!(
                "resuming the shipping of {} (attempt {})",
                ledger.run_id,
                ledger.attempt
            );
            // Its job is gone with the worker that ran it: what is there is all.
            ledger.ended = true;
            let _ = tx.send(Command::Add(Box::new(ledger)));
        }
        let done = Arc::new(Done::default());
        let (thread_store, thread_done) = (Arc::clone(&store), Arc::clone(&done));
        thread::Builder::new()
            .name("shipper".into())
            .spawn(move || ship_loop(&api, &thread_store, &thread_done, &rx))?;
        Ok(Self { tx, store, done })
    }

    /// Starts shipping a run: its ledger is written (taking over from an older attempt
    /// of the same run) before the job is spawned, so a crash right after still resumes.
    pub fn begin(&self, ledger: Ledger) -> io::Result<()> {
        self.store.claim(&ledger)?;
        self.tx
            .send(Command::Add(Box::new(ledger)))
            .map_err(|_| io::Error::other("the shipper thread is gone"))
    }

    /// Says the run's job ended, then waits until everything is on the server, until
    /// `deadline`, or until `stop()` holds. True if it all got there.
    pub fn finish(
        &self,
        run_id: &str,
        attempt: u32,
        deadline: Instant,
        stop: impl Fn() -> bool,
    ) -> bool {
        let key: Key = (run_id.to_owned(), attempt);
        if self.tx.send(Command::End(key.clone())).is_err() {
            return false;
        }
        let mut keys = self.done.keys.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if keys.remove(&key) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || stop() {
                return false;
            }
            let wait = (deadline - now).min(WAIT_CHECK);
            keys = match self.done.changed.wait_timeout(keys, wait) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

/// A run in the thread's hands, with its retry schedule.
struct Live {
    ship: RunShip,
    backoff: Backoff,
    next_try: Instant,
    failing: bool,
}

impl Live {
    fn key(&self) -> Key {
        (self.ship.ledger.run_id.clone(), self.ship.ledger.attempt)
    }
}

fn ship_loop(api: &dyn FilesApi, store: &LedgerStore, done: &Done, rx: &Receiver<Command>) {
    let mut live: Vec<Live> = Vec::new();
    let mut busy = false;
    loop {
        let first = if busy {
            rx.try_recv().map_err(|e| match e {
                mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
                mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            rx.recv_timeout(TICK)
        };
        let mut commands = Vec::new();
        match first {
            Ok(command) => commands.push(command),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if live.is_empty() => return,
            Err(RecvTimeoutError::Disconnected) => {}
        }
        commands.extend(rx.try_iter());
        for command in commands {
            apply(&mut live, command, store);
        }
        busy = false;
        let now = Instant::now();
        let mut over = Vec::new();
        for (i, run) in live.iter_mut().enumerate() {
            if now < run.next_try {
                continue;
            }
            match step(run, api, store) {
                Step::Idle => {}
                Step::More => busy = true,
                Step::Over => over.push(i),
            }
        }
        for i in over.into_iter().rev() {
            done.mark(live.remove(i).key());
        }
    }
}

fn apply(live: &mut Vec<Live>, command: Command, store: &LedgerStore) {
    match command {
        Command::Add(ledger) => {
            // A newer attempt of a run replaces the older one (stale on the server now).
            live.retain(|l| l.ship.ledger.run_id != ledger.run_id);
            live.push(Live {
                ship: RunShip::new(*ledger),
                backoff: Backoff::with_max(MAX_RETRY),
                next_try: Instant::now(),
                failing: false,
            });
        }
        Command::End(key) => {
            if let Some(run) = live.iter_mut().find(|l| l.key() == key) {
                run.ship.ledger.ended = true;
                let _ = store.save(&run.ship.ledger);
                run.next_try = Instant::now(); // flush at once, even mid-backoff
            }
        }
    }
}

enum Step {
    Idle,
    More,
    /// Finished, or given up (stale attempt, unknown run): out of the thread's hands.
    Over,
}

fn step(run: &mut Live, api: &dyn FilesApi, store: &LedgerStore) -> Step {
    let (run_id, attempt) = run.key();
    let result = run.ship.round(api, store);
    if result.is_ok() && run.failing {
        run.failing = false;
        say!("{run_id}: shipping resumed");
    }
    match result {
        Ok(Round::Idle) => {
            run.backoff.reset();
            Step::Idle
        }
        Ok(Round::More) => {
            run.backoff.reset();
            Step::More
        }
        Ok(Round::Finished) => Step::Over,
        Err(ShipError::Stale(detail)) => {
            say!("{run_id}: attempt {attempt} is no longer current ({detail}); its files are not shipped further");
            let _ = store.remove(&run.ship.ledger);
            Step::Over
        }
        Err(ShipError::Api(ApiError::Rejected(404, detail))) => {
            say!(
                "{run_id}: the server does not take this run's files ({detail}); shipping dropped"
            );
            let _ = store.remove(&run.ship.ledger);
            Step::Over
        }
        Err(e) => {
            let delay = run.backoff.next_delay();
            if !run.failing {
                say!(
                    "{run_id}: shipping failed: {e}; retrying (every {}s at most), nothing is lost",
                    MAX_RETRY.as_secs()
                );
            }
            run.failing = true;
            run.next_try = Instant::now() + delay;
            Step::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::fake_files_server::FakeServer;
    use crate::ship_run::new_ledger;
    use crate::testdirs::tempdir;

    #[test]
    fn the_end_of_a_job_is_flushed_before_finish_returns() {
        let dir = tempdir("shipper-flush");
        let run_dir = dir.join("runs/job-7");
        fs::create_dir_all(&run_dir).expect("dir");
        let server = FakeServer::new(1);
        let shipper = Shipper::start_with(server.clone(), &dir).expect("starts");
        shipper
            .begin(new_ledger("job-7", 1, &run_dir))
            .expect("begins");
        fs::write(run_dir.join("metrics.jsonl"), b"{\"_idx\":0}\n{\"_idx\":1}").expect("write");
        let deadline = Instant::now() + Duration::from_secs(20);
        assert!(shipper.finish("job-7", 1, deadline, || false));
        assert_eq!(server.file("metrics.jsonl"), b"{\"_idx\":0}\n{\"_idx\":1}");
        assert_eq!(server.state().finals.len(), 1);
        assert!(!dir.join("shipping/job-7.json").exists());
    }

    #[test]
    fn a_left_ledger_is_resumed_by_the_next_worker() {
        let dir = tempdir("shipper-resume");
        let run_dir = dir.join("runs/job-8");
        fs::create_dir_all(&run_dir).expect("dir");
        let store = LedgerStore::open(&dir).expect("store");
        store
            .claim(&new_ledger("job-8", 1, &run_dir))
            .expect("claim");
        fs::write(run_dir.join("output.log"), b"before the kill\n").expect("write");
        drop(store);
        // The server is down at first: the ledger waits, then everything lands.
        let server = FakeServer::new(1);
        server.state().fail_next = 2;
        let _shipper = Shipper::start_with(server.clone(), &dir).expect("starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while dir.join("shipping/job-8.json").exists() {
            assert!(
                Instant::now() < deadline,
                "the resumed ledger was not finished"
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(server.file("output.log"), b"before the kill\n");
        assert_eq!(server.state().finals.len(), 1);
    }

    #[test]
    fn finish_gives_up_at_its_deadline_and_keeps_the_ledger() {
        let dir = tempdir("shipper-deadline");
        let run_dir = dir.join("runs/job-9");
        fs::create_dir_all(&run_dir).expect("dir");
        fs::write(run_dir.join("output.log"), b"").expect("write");
        let server = FakeServer::new(1);
        server.state().fail_next = usize::MAX;
        let shipper = Shipper::start_with(server, &dir).expect("starts");
        shipper
            .begin(new_ledger("job-9", 1, &run_dir))
            .expect("begins");
        fs::write(run_dir.join("output.log"), b"tail\n").expect("write");
        let started = Instant::now();
        assert!(!shipper.finish("job-9", 1, started + Duration::from_millis(300), || false));
        assert!(started.elapsed() < Duration::from_secs(5));
        let ledger = fs::read(dir.join("shipping/job-9.json")).expect("kept");
        let ledger: Ledger = serde_json::from_slice(&ledger).expect("parses");
        assert!(ledger.ended, "a restart must know the job ended");
    }
}
