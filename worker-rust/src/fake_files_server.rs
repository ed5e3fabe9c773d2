//! An in-memory server for the shipping tests that keeps the protocol's rules (attempt
//! bases, offsets, idempotent retries, gaps, stale attempts, sha256-checked artifacts),
//! with failures injected where a real network would drop a request. Cloning shares
//! the state, so a test keeps a handle on what the shipper thread sends.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use crate::client::ApiError;
use crate::files_api::FilesApi;
use crate::ship_error::ShipError;
use crate::ship_run::{hex, STREAMS};

/// What the fake server holds, and the failures it is told to inject.
#[derive(Default)]
pub struct Fake {
    /// The current attempt; any other is stale.
    pub attempt: u32,
    pub files: BTreeMap<String, Vec<u8>>,
    bases: BTreeMap<(u32, String), usize>,
    pub partial: BTreeMap<String, Vec<u8>>,
    pub artifacts: BTreeMap<String, Vec<u8>>,
    /// Every final-sizes call accepted, in order.
    pub finals: Vec<(u32, BTreeMap<String, u64>)>,
    /// The next this many calls fail as if the server were unreachable.
    pub fail_next: usize,
    /// After this many more artifact bytes the upload breaks (server keeps them).
    pub cut_artifact_after: Option<u64>,
    pub calls: usize,
}

#[derive(Clone, Default)]
pub struct FakeServer(Arc<Mutex<Fake>>);

impl FakeServer {
    pub fn new(attempt: u32) -> Self {
        Self(Arc::new(Mutex::new(Fake {
            attempt,
            ..Fake::default()
        })))
    }

    pub fn state(&self) -> MutexGuard<'_, Fake> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A run file's bytes on the server (empty if it has none).
    pub fn file(&self, name: &str) -> Vec<u8> {
        self.state().files.get(name).cloned().unwrap_or_default()
    }

    fn gate(&self, attempt: u32) -> Result<MutexGuard<'_, Fake>, ShipError> {
        let mut s = self.state();
        s.calls += 1;
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return Err(ShipError::Api(ApiError::Transport("refused".into())));
        }
        if attempt != s.attempt {
            return Err(ShipError::Stale(format!(
                "attempt {} is current",
                s.attempt
            )));
        }
        Ok(s)
    }
}

impl FilesApi for FakeServer {
    fn upload_run_file(
        &self,
        _run: &str,
        name: &str,
        attempt: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, ShipError> {
        let mut s = self.gate(attempt)?;
        if !STREAMS.contains(&name) {
            assert_eq!(offset, 0, "a whole file goes at offset 0");
            s.files.insert(name.to_owned(), data.to_vec());
            return Ok(data.len() as u64);
        }
        let len = s.files.get(name).map_or(0, Vec::len);
        let base = *s.bases.entry((attempt, name.to_owned())).or_insert(len);
        let local = (len - base) as u64;
        if offset > local {
            return Err(ShipError::Gap(local));
        }
        let skip = usize::try_from(local - offset).expect("small");
        let file = s.files.entry(name.to_owned()).or_default();
        if skip < data.len() {
            file.extend_from_slice(&data[skip..]);
        }
        Ok((file.len() - base) as u64)
    }

    fn final_run_files(
        &self,
        _run: &str,
        attempt: u32,
        sizes: &BTreeMap<String, u64>,
    ) -> Result<(), ShipError> {
        self.gate(attempt)?.finals.push((attempt, sizes.clone()));
        Ok(())
    }

    fn artifact_upload_size(&self, _run: &str, path: &str, attempt: u32) -> Result<u64, ShipError> {
        let s = self.gate(attempt)?;
        Ok(s.partial.get(path).map_or(0, |p| p.len() as u64))
    }

    fn upload_artifact(
        &self,
        _run: &str,
        path: &str,
        attempt: u32,
        offset: u64,
        reader: &mut dyn Read,
        len: u64,
    ) -> Result<u64, ShipError> {
        drop(self.gate(attempt)?);
        // The body is read with the state unlocked, as a server reads off the network.
        let mut body = Vec::new();
        reader.read_to_end(&mut body).expect("body reads");
        assert_eq!(body.len() as u64, len, "Content-Length is what is sent");
        let mut s = self.state();
        let cut = s.cut_artifact_after.take();
        let held = s.partial.get(path).map_or(0, |p| p.len() as u64);
        if offset > held {
            return Err(ShipError::Gap(held));
        }
        let skip = usize::try_from(held - offset).expect("small");
        let keep = match cut {
            Some(n) => usize::try_from(n).expect("small").min(body.len()),
            None => body.len(),
        };
        let partial = s.partial.entry(path.to_owned()).or_default();
        if skip < keep {
            partial.extend_from_slice(&body[skip..keep]);
        }
        if cut.is_some() {
            return Err(ShipError::Api(ApiError::Transport("reset mid-body".into())));
        }
        Ok(partial.len() as u64)
    }

    fn complete_artifact(
        &self,
        _run: &str,
        path: &str,
        attempt: u32,
        size: u64,
        sha256: &str,
    ) -> Result<(), ShipError> {
        let mut s = self.gate(attempt)?;
        let partial = s.partial.remove(path).unwrap_or_default();
        if partial.len() as u64 != size || hex(&Sha256::digest(&partial)) != sha256 {
            return Err(ShipError::Api(ApiError::Rejected(422, "mismatch".into())));
        }
        s.artifacts.insert(path.to_owned(), partial);
        Ok(())
    }
}
