//! The server routes that receive a run's files from a worker without a shared
//! filesystem (the shipping protocol, docs/rust-worker.md): appended bytes of the
//! streams, whole files, streamed artifacts, and the final sizes.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{error_for, ApiError, Client, Payload, RawAnswer};
use crate::protocol::{CompleteArtifactRequest, FinalFilesRequest, HealthResponse, SizeResponse};

/// Limit for one upload of at most a few MiB, and for the small calls around it.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Limit for one artifact piece (see `shipping::ARTIFACT_PIECE`): slow links get time.
const ARTIFACT_TIMEOUT: Duration = Duration::from_secs(300);
/// Limit for the health probe that tells shared from shipped mode.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A refused or failed upload, by what the shipper does about it.
#[derive(Debug, Clone, PartialEq)]
pub enum ShipError {
    /// 409 `stale_attempt` (or a 409 without a reason): a newer attempt exists; this
    /// attempt's files are no longer wanted. Stop shipping the run.
    Stale(String),
    /// 409 `offset_gap`: the server has `size` bytes of this attempt; go on from there.
    Gap(u64),
    /// Anything else, as the usual classification (retry the retryable ones).
    Api(ApiError),
}

impl fmt::Display for ShipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stale(detail) => write!(f, "stale attempt (409): {detail}"),
            Self::Gap(size) => write!(f, "offset gap (409): the server has {size} bytes"),
            Self::Api(e) => e.fmt(f),
        }
    }
}

impl From<ApiError> for ShipError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// Reads a refusal: a 409 says which of [`ShipError::Stale`] or [`ShipError::Gap`] it
/// is by a `reason` field (at the top level or inside `detail`).
pub fn ship_error(status: u16, body: &[u8]) -> ShipError {
    if status == 409 {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let field = |name: &str| {
            value
                .get(name)
                .or_else(|| value.get("detail").and_then(|d| d.get(name)))
                .cloned()
        };
        let reason = field("reason");
        if reason.as_ref().and_then(|r| r.as_str()) == Some("offset_gap") {
            if let Some(size) = field("size").and_then(|s| s.as_u64()) {
                return ShipError::Gap(size);
            }
        }
        return match error_for(status, body) {
            ApiError::Conflict(detail) => ShipError::Stale(detail),
            other => ShipError::Api(other),
        };
    }
    ShipError::Api(error_for(status, body))
}

fn decode<R: DeserializeOwned>(answer: RawAnswer) -> Result<R, ShipError> {
    if !answer.is_success() {
        return Err(ship_error(answer.status, &answer.body));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|e| ShipError::Api(ApiError::Decode(e.to_string())))
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
        let route = format!(
            "/runs/{}/raw/{file}?offset={offset}&limit={limit}",
            encode_segment(run_id)
        );
        let answer = self.call_raw("GET", &route, Payload::Empty, UPLOAD_TIMEOUT)?;
        match answer.status {
            200..=299 => Ok((answer.body, answer.size_header.unwrap_or(0))),
            404 => Ok((Vec::new(), 0)),
            status => Err(error_for(status, &answer.body)),
        }
    }

    /// `PUT /runs/{id}/files/{name}?attempt=K&offset=N`: appends (a stream) or replaces
    /// (a whole file, offset 0). Returns the attempt-local size the server now has.
    pub fn upload_run_file(
        &self,
        run_id: &str,
        name: &str,
        attempt: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<u64, ShipError> {
        let route = format!(
            "/runs/{}/files/{}?attempt={attempt}&offset={offset}",
            encode_segment(run_id),
            encode_segment(name)
        );
        let payload = Payload::Bytes(data, "application/octet-stream");
        let answer = self.call_raw("PUT", &route, payload, UPLOAD_TIMEOUT)?;
        decode::<SizeResponse>(answer).map(|s| s.size)
    }

    /// `POST /runs/{id}/files/final?attempt=K`: the streams' final attempt-local sizes.
    pub fn final_run_files(
        &self,
        run_id: &str,
        attempt: u32,
        sizes: &BTreeMap<String, u64>,
    ) -> Result<(), ShipError> {
        let route = format!(
            "/runs/{}/files/final?attempt={attempt}",
            encode_segment(run_id)
        );
        let body = FinalFilesRequest {
            files: sizes.clone(),
        };
        self.post_json(&route, &body)
    }

    /// `GET /runs/{id}/uploads/{path}?attempt=K`: how much of an artifact's upload the
    /// server holds (where to resume).
    pub fn artifact_upload_size(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
    ) -> Result<u64, ShipError> {
        let route = format!(
            "/runs/{}/uploads/{}?attempt={attempt}",
            encode_segment(run_id),
            encode_path(path)
        );
        let answer = self.call_raw("GET", &route, Payload::Empty, UPLOAD_TIMEOUT)?;
        decode::<SizeResponse>(answer).map(|s| s.size)
    }

    /// `PUT /runs/{id}/artifacts/{path}?attempt=K&offset=N`: `len` bytes streamed from
    /// `reader`. Returns the size of the server's partial file afterwards.
    pub fn upload_artifact(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
        offset: u64,
        reader: &mut dyn Read,
        len: u64,
    ) -> Result<u64, ShipError> {
        let route = format!(
            "/runs/{}/artifacts/{}?attempt={attempt}&offset={offset}",
            encode_segment(run_id),
            encode_path(path)
        );
        let payload = Payload::Stream(reader, len);
        let answer = self.call_raw("PUT", &route, payload, ARTIFACT_TIMEOUT)?;
        decode::<SizeResponse>(answer).map(|s| s.size)
    }

    /// `POST /runs/{id}/artifacts/{path}/complete?attempt=K`: the server checks size and
    /// sha256 and stores the artifact.
    pub fn complete_artifact(
        &self,
        run_id: &str,
        path: &str,
        attempt: u32,
        size: u64,
        sha256: &str,
    ) -> Result<(), ShipError> {
        let route = format!(
            "/runs/{}/artifacts/{}/complete?attempt={attempt}",
            encode_segment(run_id),
            encode_path(path)
        );
        let body = CompleteArtifactRequest {
            size,
            sha256: sha256.to_owned(),
        };
        self.post_json(&route, &body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_carries_the_servers_size() {
        let body = br#"{"detail": "offset 10 is past 4", "reason": "offset_gap", "size": 4}"#;
        assert_eq!(ship_error(409, body), ShipError::Gap(4));
        let nested = br#"{"detail": {"error": "gap", "reason": "offset_gap", "size": 7}}"#;
        assert_eq!(ship_error(409, nested), ShipError::Gap(7));
    }

    #[test]
    fn other_conflicts_mean_a_stale_attempt() {
        let body = br#"{"detail": "attempt 1 is stale", "reason": "stale_attempt", "attempt": 2}"#;
        assert!(matches!(ship_error(409, body), ShipError::Stale(d) if d.contains("stale")));
        assert!(matches!(ship_error(409, b"not json"), ShipError::Stale(_)));
        // A gap without a size cannot be resumed from: treat it as any conflict.
        let sizeless = br#"{"detail": "x", "reason": "offset_gap"}"#;
        assert!(matches!(ship_error(409, sizeless), ShipError::Stale(_)));
    }

    #[test]
    fn other_statuses_keep_their_classification() {
        assert!(matches!(
            ship_error(503, b"{}"),
            ShipError::Api(ApiError::Server(503, _))
        ));
        assert!(matches!(
            ship_error(422, br#"{"detail": "bad name"}"#),
            ShipError::Api(ApiError::Rejected(422, d)) if d == "bad name"
        ));
    }

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        assert_eq!(encode_segment("job-1"), "job-1");
        assert_eq!(encode_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_path("ckpt/model 1.pt"), "ckpt/model%201.pt");
        assert_eq!(encode_path("%"), "%25");
    }
}
