//! One run's shipping: each round uploads what its files gained since the last
//! acknowledgement (the append streams by byte offset, the whole files that changed, the
//! finished artifacts, streamed and resumable), and once the job ended and everything
//! is on the server, the final sizes. The ledger records each acknowledgement.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::client::ApiError;
use crate::files_api::FilesApi;
use crate::ledger::{Ledger, LedgerStore, Stamp, StreamState};
use crate::ship_error::ShipError;

/// Append streams, shipped by byte offset.
pub const STREAMS: [&str; 3] = ["output.log", "metrics.jsonl", "system.jsonl"];
/// Whole files, replaced on the server when their size or mtime changes.
pub const WHOLE_FILES: [&str; 5] = [
    "meta.json",
    "config.json",
    "git.json",
    "diff.patch",
    "requirements.txt",
];
/// Largest stream upload (the server takes up to 8 MiB per request).
pub const STREAM_PIECE: u64 = 4 << 20;
/// Largest whole file shipped; a bigger one is reported and left out.
pub const WHOLE_FILE_MAX: u64 = 16 << 20;
/// Largest artifact upload in one request (read from disk as it is sent).
pub const ARTIFACT_PIECE: u64 = 16 << 20;
/// Stream pieces per stream in one round, and artifact bytes in one round: a round
/// stays short, so the streams of a run keep flowing while a big artifact goes up.
const ROUND_PIECES: usize = 16;
const ROUND_ARTIFACT_BYTES: u64 = 64 << 20;
/// Tries of an artifact whose completion the server refused (size or sha256 mismatch,
/// e.g. the file changed under the upload) before it is given up.
const COMPLETE_TRIES: u32 = 3;
/// Bounds on the artifacts directory walk.
const MAX_DEPTH: usize = 32;
const MAX_ARTIFACTS: usize = 10_000;

/// What a round left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Everything written so far is on the server (the job still runs).
    Idle,
    /// More is waiting than a round ships: go again at once.
    More,
    /// The job ended, everything is on the server and the final sizes were accepted;
    /// the ledger is gone.
    Finished,
}

/// An artifact upload in progress: where it stands and the hash of what was sent.
struct Upload {
    path: String,
    stamp: Stamp,
    file: File,
    offset: u64,
    hasher: Sha256,
}

/// A run being shipped.
pub struct RunShip {
    pub ledger: Ledger,
    upload: Option<Upload>,
    /// Streams the server refused for good (4xx other than 404 and 409).
    refused: Vec<String>,
    complete_failures: u32,
}

/// A new ledger for attempt `attempt` of a run whose files are under `run_dir`: each
/// stream's attempt-local offset 0 is its current local size (an earlier attempt's
/// bytes, or a seeded metrics line, are never shipped as this attempt's).
pub fn new_ledger(run_id: &str, attempt: u32, run_dir: &Path) -> Ledger {
    let mut ledger = Ledger::new(run_id, attempt, run_dir);
    for name in STREAMS {
        let local_start = fs::metadata(run_dir.join(name)).map_or(0, |m| m.len());
        ledger.streams.insert(
            name.to_owned(),
            StreamState {
                local_start,
                acked: 0,
            },
        );
    }
    ledger
}

impl RunShip {
    pub fn new(ledger: Ledger) -> Self {
        Self {
            ledger,
            upload: None,
            refused: Vec::new(),
            complete_failures: 0,
        }
    }

    /// Ships what one round allows; see [`Round`]. A retryable error leaves everything
    /// acknowledged so far recorded, for the next round to go on from.
    pub fn round(&mut self, api: &dyn FilesApi, store: &LedgerStore) -> Result<Round, ShipError> {
        let ended = self.ledger.ended;
        let mut more = false;
        for name in STREAMS {
            more |= self.ship_stream(api, store, name, ended)?;
        }
        self.ship_whole_files(api, store)?;
        more |= self.ship_artifacts(api, store)?;
        if more {
            return Ok(Round::More);
        }
        if !ended {
            return Ok(Round::Idle);
        }
        let sizes = self.final_sizes();
        api.final_run_files(&self.ledger.run_id, self.ledger.attempt, &sizes)?;
        self.ledger.final_sent = true;
        self.ledger.r#final = Some(sizes);
        if let Err(e) = store.remove(&self.ledger) {
            say!(
                "cannot remove the shipping ledger of {}: {e}",
                self.ledger.run_id
            );
        }
        Ok(Round::Finished)
    }

    /// What the server should have of the attempt: each stream's attempt-local size on
    /// this machine, and each whole file's size as last shipped (a refused one's too, so
    /// the server says its copy is missing rather than complete).
    fn final_sizes(&self) -> BTreeMap<String, u64> {
        let streams = self.ledger.streams.iter().map(|(name, state)| {
            let len = file_len(&self.ledger.run_dir.join(name));
            (name.clone(), len.saturating_sub(state.local_start))
        });
        let whole = (self.ledger.files.iter()).map(|(name, stamp)| (name.clone(), stamp.size));
        streams.chain(whole).collect()
    }

    /// Writes the ledger; a newer attempt of the run having taken it over ends this one.
    fn persist(&self, store: &LedgerStore) -> Result<(), ShipError> {
        match store.save(&self.ledger) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ShipError::Stale(
                "a newer attempt of this run took its ledger over".into(),
            )),
            Err(e) => {
                // Shipping goes on; a restart would only resend (idempotent) bytes.
                say!(
                    "cannot write the shipping ledger of {}: {e}",
                    self.ledger.run_id
                );
                Ok(())
            }
        }
    }

    /// Uploads up to [`ROUND_PIECES`] pieces of one stream; true if more remains. While
    /// the job runs, a `.jsonl` stream ships complete lines only.
    fn ship_stream(
        &mut self,
        api: &dyn FilesApi,
        store: &LedgerStore,
        name: &str,
        ended: bool,
    ) -> Result<bool, ShipError> {
        if self.refused.iter().any(|r| r == name) {
            return Ok(false);
        }
        let path = self.ledger.run_dir.join(name);
        let Some((file, meta)) = open_regular(&path) else {
            return Ok(false);
        };
        let len = meta.len();
        for _ in 0..ROUND_PIECES {
            let state = *self.ledger.streams.entry(name.to_owned()).or_default();
            let pos = state.position();
            if pos >= len {
                return Ok(false);
            }
            let want = (len - pos).min(STREAM_PIECE);
            let mut data = read_at(&file, pos, want)?;
            if !ended && name.ends_with(".jsonl") {
                match data.iter().rposition(|b| *b == b'\n') {
                    Some(end) => data.truncate(end + 1),
                    // The last line is still being written: it waits for its newline.
                    None if want < STREAM_PIECE => return Ok(false),
                    None => {} // one line longer than a piece: it goes in pieces
                }
            }
            let (run_id, attempt) = (&self.ledger.run_id, self.ledger.attempt);
            let acked = match api.upload_run_file(run_id, name, attempt, state.acked, &data) {
                Ok(size) => size,
                Err(ShipError::Gap(size)) => {
                    say!("{run_id} {name}: the server has {size} bytes of attempt {attempt}; going on from there");
                    size
                }
                Err(ShipError::Api(ApiError::Rejected(status, detail))) if status != 404 => {
                    say!("{run_id} {name}: refused ({status}: {detail}); not shipped further");
                    self.refused.push(name.to_owned());
                    return Ok(false);
                }
                Err(e) => return Err(e),
            };
            self.ledger
                .streams
                .insert(name.to_owned(), StreamState { acked, ..state });
            self.persist(store)?;
        }
        Ok(true)
    }

    /// Uploads each whole file whose stamp changed since it was last shipped.
    fn ship_whole_files(
        &mut self,
        api: &dyn FilesApi,
        store: &LedgerStore,
    ) -> Result<(), ShipError> {
        for name in WHOLE_FILES {
            let path = self.ledger.run_dir.join(name);
            let Some((file, meta)) = open_regular(&path) else {
                continue;
            };
            let stamp = stamp_of(&meta);
            if self.ledger.files.get(name) == Some(&stamp) {
                continue;
            }
            let (run_id, attempt) = (&self.ledger.run_id, self.ledger.attempt);
            if stamp.size > WHOLE_FILE_MAX {
                say!("{run_id} {name}: {} bytes is over the {WHOLE_FILE_MAX}-byte limit; not shipped", stamp.size);
            } else {
                let data = read_at(&file, 0, stamp.size)?;
                match api.upload_run_file(run_id, name, attempt, 0, &data) {
                    Ok(_) => {}
                    Err(ShipError::Api(ApiError::Rejected(status, detail))) if status != 404 => {
                        say!("{run_id} {name}: refused ({status}: {detail})");
                    }
                    Err(e) => return Err(e),
                }
            }
            self.ledger.files.insert(name.to_owned(), stamp);
            self.persist(store)?;
        }
        Ok(())
    }

    /// Uploads the artifacts not on the server yet (or changed since), up to
    /// [`ROUND_ARTIFACT_BYTES`]; true if more remains.
    fn ship_artifacts(
        &mut self,
        api: &dyn FilesApi,
        store: &LedgerStore,
    ) -> Result<bool, ShipError> {
        let mut budget = ROUND_ARTIFACT_BYTES;
        for (path, stamp) in list_artifacts(&self.ledger.run_dir.join("artifacts")) {
            if self.ledger.artifacts.get(&path) == Some(&stamp) {
                continue;
            }
            if !self.ship_artifact(api, store, &path, stamp, &mut budget)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes one artifact's upload as far as `budget` allows; true once the server has
    /// stored it (or refused it for good).
    fn ship_artifact(
        &mut self,
        api: &dyn FilesApi,
        store: &LedgerStore,
        path: &str,
        stamp: Stamp,
        budget: &mut u64,
    ) -> Result<bool, ShipError> {
        let (run_id, attempt) = (self.ledger.run_id.clone(), self.ledger.attempt);
        let mut upload = match self.upload.take() {
            Some(up) if up.path == path && up.stamp == stamp => up,
            _ => {
                let Some(up) = self.resume_upload(api, path, stamp)? else {
                    return Ok(false); // changed or gone since the walk: next round
                };
                up
            }
        };
        // An empty artifact still needs its (empty) upload to exist on the server.
        let mut first = upload.offset == 0;
        while upload.offset < stamp.size || first {
            first = false;
            if *budget == 0 {
                self.upload = Some(upload);
                return Ok(false);
            }
            let offset = upload.offset;
            let piece = (stamp.size - offset).min(ARTIFACT_PIECE).min(*budget);
            let mut reader = PieceReader {
                file: &upload.file,
                pos: offset,
                end: offset + piece,
                hasher: &mut upload.hasher,
            };
            match api.upload_artifact(&run_id, path, attempt, offset, &mut reader, piece) {
                Ok(size) if size == offset + piece && reader.pos == reader.end => {
                    upload.offset = size;
                    *budget -= piece;
                }
                // The server holds another amount (a retry, or a partial it lost): the
                // hash covers what was read, so start over from the server's size.
                Ok(_) | Err(ShipError::Gap(_)) => return Ok(false),
                Err(ShipError::Api(ApiError::Rejected(status, detail))) if status != 404 => {
                    return self.give_up_artifact(store, path, stamp, status, &detail);
                }
                Err(e) => return Err(e),
            }
        }
        let still = open_regular(&self.ledger.run_dir.join("artifacts").join(path));
        if still.map(|(_, m)| stamp_of(&m)) != Some(stamp) {
            return Ok(false); // rewritten under the upload: ship the new one
        }
        let sha256 = hex(&upload.hasher.finalize());
        match api.complete_artifact(&run_id, path, attempt, stamp.size, &sha256) {
            Ok(()) => {}
            Err(ShipError::Api(ApiError::Rejected(422, detail))) => {
                self.complete_failures += 1;
                if self.complete_failures >= COMPLETE_TRIES {
                    return self.give_up_artifact(store, path, stamp, 422, &detail);
                }
                say!("{run_id} artifact {path}: completion refused ({detail}); uploading it again");
                return Ok(false);
            }
            Err(ShipError::Api(ApiError::Rejected(status, detail))) if status != 404 => {
                return self.give_up_artifact(store, path, stamp, status, &detail);
            }
            Err(e) => return Err(e),
        }
        self.artifact_done(store, path, stamp)
    }

    /// Starts (or resumes) an upload where the server's partial file ends, hashing the
    /// bytes it already has from the local copy. `None` if the file changed or went.
    fn resume_upload(
        &mut self,
        api: &dyn FilesApi,
        path: &str,
        stamp: Stamp,
    ) -> Result<Option<Upload>, ShipError> {
        let Some((file, meta)) = open_regular(&self.ledger.run_dir.join("artifacts").join(path))
        else {
            return Ok(None);
        };
        if stamp_of(&meta) != stamp {
            return Ok(None);
        }
        let (run_id, attempt) = (&self.ledger.run_id, self.ledger.attempt);
        let held = match api.artifact_upload_size(run_id, path, attempt) {
            Ok(size) => size,
            Err(ShipError::Api(ApiError::Rejected(404, _))) => 0,
            Err(e) => return Err(e),
        };
        // A partial longer than the file is junk; completing it fails (422), the server
        // discards it and the next try starts from 0.
        let offset = held.min(stamp.size);
        let mut hasher = Sha256::new();
        let mut prefix = PieceReader {
            file: &file,
            pos: 0,
            end: offset,
            hasher: &mut hasher,
        };
        io::copy(&mut prefix, &mut io::sink()).map_err(io_error)?;
        if prefix.pos != offset {
            return Ok(None);
        }
        Ok(Some(Upload {
            path: path.to_owned(),
            stamp,
            file,
            offset,
            hasher,
        }))
    }

    fn give_up_artifact(
        &mut self,
        store: &LedgerStore,
        path: &str,
        stamp: Stamp,
        status: u16,
        detail: &str,
    ) -> Result<bool, ShipError> {
        say!(
            "{} artifact {path}: refused ({status}: {detail}); not shipped",
            self.ledger.run_id
        );
        self.artifact_done(store, path, stamp)
    }

    /// Records an artifact as dealt with (stored, or refused for good): it is not
    /// uploaded again unless it changes. Always true, for [`Self::ship_artifact`].
    fn artifact_done(
        &mut self,
        store: &LedgerStore,
        path: &str,
        stamp: Stamp,
    ) -> Result<bool, ShipError> {
        self.complete_failures = 0;
        self.ledger.artifacts.insert(path.to_owned(), stamp);
        self.persist(store)?;
        Ok(true)
    }
}

/// Reads `[pos, end)` of a file through the hash, for an upload's body.
struct PieceReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    hasher: &'a mut Sha256,
}

impl Read for PieceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.pos).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

fn io_error(e: io::Error) -> ShipError {
    // A local read failing is retried like an unreachable server: nothing is lost.
    ShipError::Api(ApiError::Transport(format!("local read: {e}")))
}

/// `want` bytes of `file` from `pos` (fewer if it is shorter now).
fn read_at(file: &File, pos: u64, want: u64) -> Result<Vec<u8>, ShipError> {
    let mut data = vec![0; usize::try_from(want).unwrap_or(usize::MAX)];
    let mut got = 0;
    while got < data.len() {
        match file.read_at(&mut data[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e)),
        }
    }
    data.truncate(got);
    Ok(data)
}

fn file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| if m.is_file() { m.len() } else { 0 })
}

fn stamp_of(meta: &Metadata) -> Stamp {
    Stamp {
        size: meta.len(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
    }
}

/// Opens `path` only if it is a regular file and not a symlink (checked on the opened
/// file itself, so a swap between the look and the open is caught).
fn open_regular(path: &Path) -> Option<(File, Metadata)> {
    let before = fs::symlink_metadata(path).ok()?;
    if !before.is_file() {
        return None;
    }
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    (meta.dev() == before.dev() && meta.ino() == before.ino()).then_some((file, meta))
}

/// Whether a name is one a writer is still busy with (`save_artifact` writes
/// `.<name>.<pid>.tmp`, then renames).
fn in_progress(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp")
}

/// The regular files under `root` by relative path (with `/`), sorted; symlinks and
/// names being written are left out.
pub fn list_artifacts(root: &Path) -> Vec<(String, Stamp)> {
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new(), 0)];
    while let Some((dir, prefix, depth)) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // not UTF-8: no URL for it
            };
            if in_progress(&name) || found.len() >= MAX_ARTIFACTS {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue; // DirEntry::metadata does not follow symlinks
            };
            let rel = format!("{prefix}{name}");
            if meta.is_file() {
                found.push((rel, stamp_of(&meta)));
            } else if meta.is_dir() && depth < MAX_DEPTH {
                pending.push((entry.path(), format!("{rel}/"), depth + 1));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Lowercase hex, as the server writes a sha256.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[path = "ship_run_tests.rs"]
mod tests;
