//! The shipping ledger: per run, what the server has acknowledged, kept in
//! `<data-dir>/shipping/<run_id>.json` (outside `runs/`) so that a worker that was
//! killed, or a server that went away, resumes exactly where shipping stopped.
//!
//! Written atomically (a temporary file, then a rename) after each acknowledgement;
//! deleted once everything was shipped and the final sizes were accepted. One run id has
//! one ledger file, so a newer attempt of the same run takes the file over: the store
//! remembers which attempt owns each run id, and a superseded attempt's writes are
//! refused instead of clobbering the newer one's.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Where one append stream stands: the local byte that is the attempt's offset 0, and
/// how many bytes from there the server has acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    #[serde(default)]
    pub local_start: u64,
    #[serde(default)]
    pub acked: u64,
}

impl StreamState {
    /// The local byte to send next.
    pub fn position(&self) -> u64 {
        self.local_start + self.acked
    }
}

/// A file's size and modification time: a whole file or an artifact is uploaded again
/// when either changes. Written as `[size, mtime_ns]`, as the Python worker does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u64, i64)", into = "(u64, i64)")]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
}

impl From<(u64, i64)> for Stamp {
    fn from((size, mtime_ns): (u64, i64)) -> Self {
        Self { size, mtime_ns }
    }
}

impl From<Stamp> for (u64, i64) {
    fn from(stamp: Stamp) -> Self {
        (stamp.size, stamp.mtime_ns)
    }
}

/// One run attempt's shipping state: the same JSON as the Python worker's ledger
/// (`whirr/shipping/ledger.py`), so either worker can resume the other's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    pub run_id: String,
    pub attempt: u32,
    /// The run's directory on this machine.
    pub run_dir: PathBuf,
    /// Append streams by name.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
    /// Whole files by name: the stamp last shipped.
    #[serde(default)]
    pub files: BTreeMap<String, Stamp>,
    /// Artifacts by path under `artifacts/`: the stamp stored on the server (or
    /// refused by it for good).
    #[serde(default)]
    pub artifacts: BTreeMap<String, Stamp>,
    /// The job ended: ship everything (partial last lines too), then the final sizes.
    #[serde(default)]
    pub ended: bool,
    /// The server accepted the final sizes.
    #[serde(default)]
    pub final_sent: bool,
    /// The final sizes it accepted.
    #[serde(default)]
    pub r#final: Option<BTreeMap<String, u64>>,
}

impl Ledger {
    pub fn new(run_id: &str, attempt: u32, run_dir: &Path) -> Self {
        Self {
            run_id: run_id.to_owned(),
            attempt,
            run_dir: run_dir.to_path_buf(),
            streams: BTreeMap::new(),
            files: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            ended: false,
            final_sent: false,
            r#final: None,
        }
    }
}

/// The ledgers of one worker data dir.
pub struct LedgerStore {
    dir: PathBuf,
    /// Which attempt owns each run id's ledger file now.
    owners: Mutex<BTreeMap<String, u32>>,
}

impl LedgerStore {
    /// The store under `<data_dir>/shipping/` (created owner-only when missing).
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let dir = data_dir.join("shipping");
        crate::process::private_dirs(&dir)?;
        Ok(Self {
            dir,
            owners: Mutex::new(BTreeMap::new()),
        })
    }

    fn path(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("{run_id}.json"))
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u32>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `ledger` the owner of its run id's file (a newer attempt takes over from an
    /// older one) and writes it.
    pub fn claim(&self, ledger: &Ledger) -> io::Result<()> {
        let mut owners = self.owners();
        owners.insert(ledger.run_id.clone(), ledger.attempt);
        write_atomically(&self.path(&ledger.run_id), ledger)
    }

    /// Writes `ledger` if its attempt still owns the file; `Ok(false)` when a newer
    /// attempt took it over (the caller then drops its run).
    pub fn save(&self, ledger: &Ledger) -> io::Result<bool> {
        let owners = self.owners();
        if owners.get(&ledger.run_id) != Some(&ledger.attempt) {
            return Ok(false);
        }
        write_atomically(&self.path(&ledger.run_id), ledger)?;
        Ok(true)
    }

    /// Deletes `ledger`'s file if its attempt still owns it.
    pub fn remove(&self, ledger: &Ledger) -> io::Result<()> {
        let mut owners = self.owners();
        if owners.get(&ledger.run_id) != Some(&ledger.attempt) {
            return Ok(());
        }
        owners.remove(&ledger.run_id);
        match fs::remove_file(self.path(&ledger.run_id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every ledger a previous worker left (each now owned by its attempt). A file that
    /// does not parse is reported and left alone.
    pub fn load_all(&self) -> Vec<Ledger> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut found = Vec::new();
        let mut owners = self.owners();
        for path in paths {
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Ledger>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(ledger) if self.path(&ledger.run_id) == path => {
                    owners.insert(ledger.run_id.clone(), ledger.attempt);
                    found.push(ledger);
                }
                Ok(_) => say!("ignoring {}: its run id does not match", path.display()),
                Err(e) => say!("ignoring shipping ledger {}: {e}", path.display()),
            }
        }
        found
    }
}

/// Writes `value` as JSON to `path` by way of a temporary file and a rename, so a
/// reader (or a worker killed mid-write) sees the old ledger or the new one, never half.
fn write_atomically(path: &Path, value: &Ledger) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&bytes)?;
    drop(file);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdirs::tempdir;

    #[test]
    fn a_ledger_round_trips_through_its_file() {
        let dir = tempdir("ledger-rt");
        let store = LedgerStore::open(&dir).expect("store");
        let mut ledger = Ledger::new("job-3", 2, &dir.join("runs/job-3"));
        ledger.streams.insert(
            "output.log".into(),
            StreamState {
                local_start: 10,
                acked: 5,
            },
        );
        ledger.files.insert(
            "meta.json".into(),
            Stamp {
                size: 9,
                mtime_ns: 123,
            },
        );
        store.claim(&ledger).expect("claim");
        let text = fs::read_to_string(dir.join("shipping/job-3.json")).expect("file");
        assert!(text.contains(r#""meta.json":[9,123]"#), "{text}");
        let again = LedgerStore::open(&dir).expect("store").load_all();
        assert_eq!(again, vec![ledger]);
        assert!(!dir.join("shipping/job-3.json.tmp").exists());
    }

    #[test]
    fn a_newer_attempt_takes_the_file_over() {
        let dir = tempdir("ledger-owner");
        let store = LedgerStore::open(&dir).expect("store");
        let mut old = Ledger::new("job-4", 1, &dir);
        store.claim(&old).expect("claim");
        let new = Ledger::new("job-4", 2, &dir);
        store.claim(&new).expect("claim");
        old.ended = true;
        assert!(
            !store.save(&old).expect("save"),
            "the old attempt must not write"
        );
        store.remove(&old).expect("remove is a no-op");
        let left = store.load_all();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].attempt, 2);
        store.remove(&new).expect("remove");
        assert!(store.load_all().is_empty());
    }

    #[test]
    fn a_python_workers_ledger_reads() {
        let dir = tempdir("ledger-python");
        let store = LedgerStore::open(&dir).expect("store");
        let text = r#"{"run_id":"job-6","attempt":2,"run_dir":"/d/runs/job-6",
            "streams":{"output.log":{"local_start":7,"acked":3}},
            "files":{"meta.json":[10,1700000000000000000]},
            "artifacts":{"ckpt/model.pt":[5,1]},"ended":true,"final_sent":false}"#;
        fs::write(dir.join("shipping/job-6.json"), text).expect("write");
        let ledger = store.load_all().pop().expect("one ledger");
        assert_eq!(ledger.streams["output.log"].position(), 10);
        assert_eq!(ledger.artifacts["ckpt/model.pt"].size, 5);
        assert!(ledger.ended);
    }

    #[test]
    fn unreadable_ledgers_are_left_alone() {
        let dir = tempdir("ledger-bad");
        let store = LedgerStore::open(&dir).expect("store");
        fs::write(dir.join("shipping/job-1.json"), b"{not json").expect("write");
        assert!(store.load_all().is_empty());
        assert!(dir.join("shipping/job-1.json").exists());
    }

    #[test]
    fn the_ledger_dir_and_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempdir("ledger-modes");
        let store = LedgerStore::open(&dir).expect("store");
        store.claim(&Ledger::new("job-5", 1, &dir)).expect("claim");
        let mode = |p: &Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("shipping")), 0o700);
        assert_eq!(mode(&dir.join("shipping/job-5.json")), 0o600);
    }
}
