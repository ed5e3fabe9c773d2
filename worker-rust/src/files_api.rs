//! The server routes that receive a run's files from a worker without a shared
//! filesystem (the shipping protocol, docs/rust-worker.md): appended bytes of the
//! streams, whole files, streamed artifacts, and the final sizes. [`FilesApi`] is what
//! shipping needs of them; [`Client`] implements it over HTTP, fakes do in tests.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde::Serialize;

use crate::client::{error_for, ApiError, Client, Payload, RawAnswer};
use crate::protocol::{CompleteArtifactRequest, FinalFilesRequest, HealthResponse, SizeResponse};
use crate::ship_error::{ship_error, ShipError};

/// Limit for one upload of at most a few MiB, and for the small calls around it.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one artifact piece (see `ship_run::ARTIFACT_PIECE`): slow links get time.
const ARTIFACT_TIMEOUT: Duration = Duration::from_secs(300);
/// Limit for the health probe that tells shared from shipped mode.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes shipping uses ([`Client`] in the worker, a fake in tests).
pub trait FilesApi {
    /// `PUT /runs/{id}/files/{name}?attempt=K&offset=N`: appends (a stream) or replaces
    /// (a whole file, offset 0). Returns the attempt-local size the server now has.
    fn upload_run_file(
        &self,
        run_id: &str,
        name: &str,
        attempt: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, ShipError>;

    /// `POST /runs/{id}/files/final?attempt=K`: the streams' final attempt-local sizes.
    fn final_run_files(
        &self,
        run_id: &str,
        attempt: u32,
        sizes: &BTreeMap<String, u64>,
    ) -> Result<(), ShipError>;

    /// `GET /runs/{id}/uploads/{path}?attempt=K`: how much of an artifact's upload the
    /// server holds (where to resume).
    fn artifact_upload_size(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
    ) -> Result<u64, ShipError>;

    /// `PUT /runs/{id}/artifacts/{path}?attempt=K&offset=N`: `len` bytes streamed from
    /// `reader`. Returns the size of the server's partial file afterwards.
    fn upload_artifact(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
        offset: u64,
        reader: &mut dyn Read,
        len: u64,
    ) -> Result<u64, ShipError>;

    /// `POST /runs/{id}/artifacts/{path}/complete?attempt=K`: the server checks size and
    /// sha256 and stores the artifact.
    fn complete_artifact(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
        size: u64,
        sha256: &str,
    ) -> Result<(), ShipError>;
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved bytes).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-encodes a relative path, keeping its `/` separators.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// `/runs/{id}/{rest}`, the run id encoded (`rest` is encoded by the caller).
fn run_route(run_id: &str, rest: &str) -> String {
    format!("/runs/{}/{rest}", encode_segment(run_id))
}

/// The size a successful upload (or the upload probe) answers with: `{"size": N}`.
fn size_from(answer: RawAnswer) -> Result<u64, ShipError> {
    if !answer.is_success() {
        return Err(ship_error(answer.status, &answer.body));
    }
    serde_json::from_slice::<SizeResponse>(&answer.body)
        .map(|s| s.size)
        .map_err(|e| ShipError::Api(ApiError::Decode(e.to_string())))
}

impl Client {
    /// `GET /health`: the server's id, when it has one. An older server sends none, and
    /// one without the route (404) or with an answer of another shape is taken as such.
    pub fn server_id(&self) -> Result<Option<String>, ApiError> {
        let answer = self.call_raw("GET", "/health", Payload::Empty, PROBE_TIMEOUT)?;
        match answer.status {
            200..=299 | 404 => {}
            status => return Err(error_for(status, &answer.body)),
        }
        let health: Option<HealthResponse> = serde_json::from_slice(&answer.body).ok();
        Ok(health
            .and_then(|h| h.server_id)
            .filter(|id| !id.trim().is_empty()))
    }

    /// `GET /runs/{id}/raw/{file}` from `offset`, at most `limit` bytes: whole lines
    /// and the file's size. A run or file the server does not have reads as empty.
    pub fn run_raw(
        &self,
        run_id: &str,
        file: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<u8>, u64), ApiError> {
        let route = run_route(run_id, &format!("raw/{file}?offset={offset}&limit={limit}"));
        let answer = self.call_raw("GET", &route, Payload::Empty, UPLOAD_TIMEOUT)?;
        match answer.status {
            200..=299 => Ok((answer.body, answer.size_header.unwrap_or(0))),
            404 => Ok((Vec::new(), 0)),
            status => Err(error_for(status, &answer.body)),
        }
    }

    fn post_json<B: Serialize>(&self, route: &str, body: &B) -> Result<(), ShipError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Decode(e.to_string()))?;
        let payload = Payload::Bytes(&bytes, "application/json");
        let answer = self.call_raw("POST", route, payload, UPLOAD_TIMEOUT)?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(ship_error(answer.status, &answer.body))
        }
    }
}

impl FilesApi for Client {
    fn upload_run_file(
        &self,
        run_id: &str,
        name: &str,
        attempt: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, ShipError> {
        let name = encode_segment(name);
        let route = run_route(
            run_id,
            &format!("files/{name}?attempt={attempt}&offset={offset}"),
        );
        let payload = Payload::Bytes(data, "application/octet-stream");
        size_from(self.call_raw("PUT", &route, payload, UPLOAD_TIMEOUT)?)
    }

    fn final_run_files(
        &self,
        run_id: &str,
        attempt: u32,
        sizes: &BTreeMap<String, u64>,
    ) -> Result<(), ShipError> {
        let route = run_route(run_id, &format!("files/final?attempt={attempt}"));
        let body = FinalFilesRequest {
            files: sizes.clone(),
        };
        self.post_json(&route, &body)
    }

    fn artifact_upload_size(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
    ) -> Result<u64, ShipError> {
        let path = encode_path(path);
        let route = run_route(run_id, &format!("uploads/{path}?attempt={attempt}"));
        size_from(self.call_raw("GET", &route, Payload::Empty, UPLOAD_TIMEOUT)?)
    }

    fn upload_artifact(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
        offset: u64,
        reader: &mut dyn Read,
        len: u64,
    ) -> Result<u64, ShipError> {
        let path = encode_path(path);
        let route = run_route(
            run_id,
            &format!("artifacts/{path}?attempt={attempt}&offset={offset}"),
        );
        let payload = Payload::Stream(reader, len);
        size_from(self.call_raw("PUT", &route, payload, ARTIFACT_TIMEOUT)?)
    }

    fn complete_artifact(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
        size: u64,
        sha256: &str,
    ) -> Result<(), ShipError> {
        let path = encode_path(path);
        let route = run_route(
            run_id,
            &format!("artifacts/{path}/complete?attempt={attempt}"),
        );
        let body = CompleteArtifactRequest {
            size,
            sha256: sha256.to_owned(),
        };
        self.post_json(&route, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        assert_eq!(encode_segment("job-1"), "job-1");
        assert_eq!(encode_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_path("ckpt/model 1.pt"), "ckpt/model%201.pt");
        assert_eq!(encode_path("%"), "%25");
    }
}
