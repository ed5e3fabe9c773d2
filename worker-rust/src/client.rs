//! Blocking HTTP client for the server's `/api/v1` routes (ureq, explicit timeouts).
#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::protocol::{
    Ack, ClaimRequest, ClaimResponse, CompleteRequest, ErrorBody, FailRequest, HeartbeatRequest,
    HeartbeatResponse, Job, RegisterRequest, SizeWarningRequest, StartedRequest, UnregisterRequest,
};

/// Time to open a TCP connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request limit for ordinary calls.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Limit for the unregister call a stopping worker makes (best effort: a worker that
/// could not say goodbye is simply seen as gone later).
const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(2);
/// Extra time a long-poll claim may take beyond the `wait` the server was asked to hold.
const LONG_POLL_MARGIN: Duration = Duration::from_secs(10);
/// Largest response body read (a job's config rides along in a claim).
const MAX_BODY: u64 = 16 * 1024 * 1024;
/// The wire protocol this worker speaks (`whirr/wire/protocol.py`): 1, the original
/// request shapes (a claim names one GPU). A server that cannot answer it says 426 with
/// which side to upgrade, and the worker stops with that message (a `Rejected`).
pub const PROTOCOL: &str = "1";
/// The header that carries it, both ways.
pub const PROTOCOL_HEADER: &str = "X-Whirr-Protocol";

/// A failed call, classified by what the worker should do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 409: the lease or attempt is no longer ours.
    Conflict(String),
    /// 401/403: the token is missing or wrong; retrying will not help.
    Auth(u16, String),
    /// Another 4xx: the server rejected the request itself.
    Rejected(u16, String),
    /// 5xx: the server failed; worth retrying.
    Server(u16, String),
    /// No answer: refused, reset, timed out, DNS; worth retrying.
    Transport(String),
    /// A 2xx answer whose body did not decode.
    Decode(String),
}

impl ApiError {
    /// Whether a retry after a pause may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Server(..) | Self::Transport(_))
    }

    /// Whether the answer to a heartbeat or start report says the attempt is no longer
    /// this worker's: 409 (another attempt, or ended), or 404 (no such job any more).
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::Conflict(_) | Self::Rejected(404, _))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict(detail) => write!(f, "conflict (409): {detail}"),
            Self::Auth(status, detail) => {
                write!(
                    f,
                    "not authorised ({status}): {detail}; check --token/WHIRR_TOKEN"
                )
            }
            Self::Rejected(status, detail) => write!(f, "rejected ({status}): {detail}"),
            Self::Server(status, detail) => write!(f, "server error ({status}): {detail}"),
            Self::Transport(e) => write!(f, "server unreachable: {e}"),
            Self::Decode(e) => write!(f, "unexpected answer from server: {e}"),
        }
    }
}

/// The result of a claim whose job did not decode: enough to report it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct UndecodableJob {
    pub id: i64,
    pub attempt: u32,
    pub error: String,
}

/// What a claim brought back.
#[derive(Debug, Clone, PartialEq)]
pub enum Claimed {
    Job(Box<Job>),
    Nothing,
    /// The server handed us a job we cannot read; it must be failed, not dropped.
    Undecodable(UndecodableJob),
}

/// Client for one server; cheap to clone (connections are pooled and shared).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Client {
    /// A client for `server` (`http://host:port`, with or without `/api/v1`).
    pub fn new(server: &str, token: Option<&str>) -> Result<Self, String> {
        let base = api_base(server)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("whirr-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            base,
            auth: token.map(|t| format!("Bearer {t}")),
        })
    }

    /// The API root every route hangs off, e.g. `http://h:8080/api/v1`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The bearer token this client sends, if any (never handed to jobs: they get the
    /// run token of their claim, see `job_env`).
    #[cfg(test)]
    pub fn token(&self) -> Option<&str> {
        self.auth.as_deref().and_then(|a| a.strip_prefix("Bearer "))
    }

    pub fn register(&self, body: &RegisterRequest) -> Result<Ack, ApiError> {
        self.post("/workers/register", body, REQUEST_TIMEOUT)
    }

    pub fn unregister(&self, worker_id: &str) -> Result<Ack, ApiError> {
        let body = UnregisterRequest {
            worker_id: worker_id.to_owned(),
        };
        self.post("/workers/unregister", &body, UNREGISTER_TIMEOUT)
    }

    /// `POST /jobs/claim`, held by the server up to `body.wait` seconds.
    pub fn claim(&self, body: &ClaimRequest) -> Result<Claimed, ApiError> {
        let timeout = Duration::from_secs_f64(body.wait.max(0.0)) + LONG_POLL_MARGIN;
        let value: serde_json::Value = self.post("/jobs/claim", body, timeout)?;
        match serde_json::from_value::<ClaimResponse>(value.clone()) {
            Ok(ClaimResponse { job: Some(job) }) => Ok(Claimed::Job(Box::new(job))),
            Ok(ClaimResponse { job: None }) => Ok(Claimed::Nothing),
            Err(e) => {
                let job = value.get("job");
                let id = job.and_then(|j| j.get("id")).and_then(|v| v.as_i64());
                let attempt = job
                    .and_then(|j| j.get("attempt"))
                    .and_then(|v| v.as_u64())
                    .and_then(|a| u32::try_from(a).ok());
                match (id, attempt) {
                    (Some(id), Some(attempt)) => Ok(Claimed::Undecodable(UndecodableJob {
                        id,
                        attempt,
                        error: format!("worker could not read the job: {e}"),
                    })),
                    _ => Err(ApiError::Decode(e.to_string())),
                }
            }
        }
    }

    pub fn started(&self, job_id: i64, body: &StartedRequest) -> Result<Ack, ApiError> {
        self.post(&format!("/jobs/{job_id}/started"), body, REQUEST_TIMEOUT)
    }

    /// `POST /jobs/{id}/heartbeat`, given up after `timeout` (at most the usual limit):
    /// a renewal that takes longer than the interval between two is better tried again.
    pub fn heartbeat(
        &self,
        job_id: i64,
        body: &HeartbeatRequest,
        timeout: Duration,
    ) -> Result<HeartbeatResponse, ApiError> {
        let timeout = timeout.clamp(Duration::from_secs(1), REQUEST_TIMEOUT);
        self.post(&format!("/jobs/{job_id}/heartbeat"), body, timeout)
    }

    /// `POST /jobs/{id}/size_warning` (its answer, the run, is not read), given up after
    /// `timeout` like a heartbeat: the worker's loop must be free to fence the job.
    pub fn size_warning(
        &self,
        job_id: i64,
        body: &SizeWarningRequest,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let timeout = timeout.clamp(Duration::from_secs(1), REQUEST_TIMEOUT);
        self.post::<_, serde::de::IgnoredAny>(
            &format!("/jobs/{job_id}/size_warning"),
            body,
            timeout,
        )
        .map(|_| ())
    }

    pub fn complete(&self, job_id: i64, body: &CompleteRequest) -> Result<Ack, ApiError> {
        self.post(&format!("/jobs/{job_id}/complete"), body, REQUEST_TIMEOUT)
    }

    pub fn fail(&self, job_id: i64, body: &FailRequest) -> Result<Ack, ApiError> {
        self.post(&format!("/jobs/{job_id}/fail"), body, REQUEST_TIMEOUT)
    }

    /// Sends `method route` with `payload` and hands back the answer undecoded (a
    /// transport failure is the only error).
    pub fn call_raw(
        &self,
        method: &str,
        route: &str,
        payload: Payload<'_>,
        timeout: Duration,
    ) -> Result<RawAnswer, ApiError> {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{route}", self.base))
            .header(PROTOCOL_HEADER, PROTOCOL);
        if let Some(auth) = &self.auth {
            builder = builder.header("Authorization", auth);
        }
        match payload {
            Payload::Empty => self.send_raw(builder, ureq::SendBody::none(), timeout),
            Payload::Bytes(bytes, content_type) => {
                let mut reader = bytes;
                let builder = builder
                    .header("Content-Type", content_type)
                    .header("Content-Length", bytes.len());
                self.send_raw(builder, ureq::SendBody::from_reader(&mut reader), timeout)
            }
            Payload::Stream(reader, len) => {
                let builder = builder
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Length", len);
                self.send_raw(builder, ureq::SendBody::from_reader(reader), timeout)
            }
        }
    }

    fn send_raw(
        &self,
        builder: ureq::http::request::Builder,
        body: ureq::SendBody<'_>,
        timeout: Duration,
    ) -> Result<RawAnswer, ApiError> {
        let request = builder
            .body(body)
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout))
            .build();
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let size_header = response
            .headers()
            .get("X-Whirr-Size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        Ok(RawAnswer {
            status,
            body,
            size_header,
        })
    }

    fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        route: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<R, ApiError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ApiError::Decode(e.to_string()))?;
        let mut req = self
            .agent
            .post(format!("{}{route}", self.base))
            .header("Content-Type", "application/json")
            .header(PROTOCOL_HEADER, PROTOCOL);
        if let Some(auth) = &self.auth {
            req = req.header("Authorization", auth);
        }
        let response = req
            .config()
            .timeout_global(Some(timeout))
            .build()
            .send(&bytes[..])
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        read_answer(response)
    }
}

/// Turns a response into the decoded body, or an [`ApiError`] by status.
fn read_answer<R: DeserializeOwned>(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<R, ApiError> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| ApiError::Transport(e.to_string()))?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|e| ApiError::Decode(e.to_string()));
    }
    Err(error_for(status, text.as_bytes()))
}

/// The [`ApiError`] a non-2xx answer stands for.
pub fn error_for(status: u16, body: &[u8]) -> ApiError {
    let detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => body.message(),
        Err(_) => String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
            .trim()
            .to_owned(),
    };
    match status {
        409 => ApiError::Conflict(detail),
        401 | 403 => ApiError::Auth(status, detail),
        400..=499 => ApiError::Rejected(status, detail),
        _ => ApiError::Server(status, detail),
    }
}

/// An answer as it came, for routes whose body is not one JSON shape (raw run files)
/// or whose refusals carry fields the caller acts on (an upload's `offset_gap`).
pub struct RawAnswer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `X-Whirr-Size`: the whole file's size, on the raw run-file route.
    pub size_header: Option<u64>,
}

impl RawAnswer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request body: nothing, bytes in memory, or `len` bytes read from a reader (a file
/// streamed from disk, never held whole).
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8], &'static str),
    Stream(&'a mut dyn std::io::Read, u64),
}

/// `http://h:8080`, `http://h:8080/` and `http://h:8080/api/v1` all give
/// `http://h:8080/api/v1`; a bare `h:8080` means `http://`.
pub fn api_base(server: &str) -> Result<String, String> {
    let server = server.trim();
    if server.is_empty() {
        return Err("the server URL is empty".into());
    }
    let with_scheme = if server.contains("://") {
        server.to_owned()
    } else {
        format!("http://{server}")
    };
    let scheme = with_scheme.split("://").next().unwrap_or_default();
    match scheme {
        "http" => {}
        "https" if cfg!(feature = "tls") => {}
        "https" => {
            return Err(
                "this whirr-worker was built without HTTPS support; rebuild with \
                 `cargo build --release --features tls`"
                    .into(),
            )
        }
        other => return Err(format!("unsupported URL scheme {other:?} in {server:?}")),
    }
    let trimmed = with_scheme.trim_end_matches('/');
    let root = trimmed.strip_suffix("/api/v1").unwrap_or(trimmed);
    Ok(format!("{root}/api/v1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_normalises_urls() {
        for url in [
            "http://h:8080",
            "http://h:8080/",
            "http://h:8080/api/v1",
            "http://h:8080/api/v1/",
            " h:8080 ",
        ] {
            assert_eq!(
                api_base(url).as_deref(),
                Ok("http://h:8080/api/v1"),
                "{url}"
            );
        }
        assert!(api_base("").is_err());
        assert!(api_base("ftp://h").is_err());
    }

    #[test]
    fn https_needs_the_tls_feature() {
        assert_eq!(api_base("https://h").is_ok(), cfg!(feature = "tls"));
    }

    #[test]
    fn only_server_and_transport_errors_are_retried() {
        assert!(ApiError::Server(503, "x".into()).is_retryable());
        assert!(ApiError::Transport("refused".into()).is_retryable());
        assert!(!ApiError::Conflict("x".into()).is_retryable());
        assert!(!ApiError::Auth(401, "x".into()).is_retryable());
        assert!(!ApiError::Rejected(422, "x".into()).is_retryable());
    }

    #[test]
    fn conflict_and_not_found_mean_the_lease_is_lost() {
        assert!(ApiError::Conflict("x".into()).is_lease_lost());
        assert!(ApiError::Rejected(404, "Job #3 not found".into()).is_lease_lost());
        assert!(!ApiError::Rejected(422, "x".into()).is_lease_lost());
        assert!(!ApiError::Server(503, "x".into()).is_lease_lost());
        assert!(!ApiError::Transport("reset".into()).is_lease_lost());
    }

    #[test]
    fn token_is_handed_back_as_given() {
        let client = Client::new("http://127.0.0.1:9", Some("s3cret")).expect("client");
        assert_eq!(client.token(), Some("s3cret"));
        let anonymous = Client::new("http://127.0.0.1:9", None).expect("client");
        assert_eq!(anonymous.token(), None);
    }

    #[test]
    fn unreachable_server_is_a_transport_error() {
        // Port 9 (discard) on loopback is closed in any sane test environment.
        let client = Client::new("http://127.0.0.1:9", None).expect("client");
        let err = client.unregister("w").expect_err("no server there");
        assert!(matches!(err, ApiError::Transport(_)), "{err}");
    }
}
