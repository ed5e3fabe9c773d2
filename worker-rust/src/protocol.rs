//! Wire types of the whirr HTTP API (`/api/v1`) that the worker speaks.
//!
//! Every request and response body the worker sends or reads is defined here and
//! nowhere else. The same shapes are checked in as JSON fixtures under
//! `tests/fixtures/protocol/` and decoded both by `cargo test` (below) and by the
//! Python test suite, so the two sides cannot drift apart silently.
//!
//! Evolution rules: responses ignore unknown keys (the server may add fields), and a
//! field the server may omit carries `#[serde(default)]`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /workers/register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    pub worker_id: String,
    pub hostname: String,
    pub gpu_ids: Vec<u32>,
    /// CPU-only jobs run at once (the Python worker's `--slots`); unsent: one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
}

/// `POST /workers/unregister`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnregisterRequest {
    pub worker_id: String,
}

/// The `{message, success}` answer of most mutating routes (`started` omits `message`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "default_true")]
    pub success: bool,
}

fn default_true() -> bool {
    true
}

/// `POST /jobs/claim`: `wait` asks the server to hold the request (long-poll) for up
/// to that many seconds until a job is available.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub gpu_id: Option<u32>,
    pub lease_seconds: u32,
    pub wait: f64,
    /// What a worker running several jobs has free now (the Python worker sends
    /// both); this worker runs one job at a time and sends neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_gpu_ids: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_slots: Option<u32>,
}

/// Answer to a claim: a job, or `null` when the queue stayed empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub job: Option<Job>,
}

/// A job as the server describes it. Only `id`, `command_argv`, `workdir` and
/// `attempt` drive the worker; the rest is carried for logs and completeness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    #[serde(default)]
    pub name: Option<String>,
    pub command_argv: Vec<String>,
    pub workdir: String,
    #[serde(default)]
    pub config: serde_json::Value,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub status: Option<String>,
    pub attempt: u32,
    #[serde(default)]
    pub worker_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub lease_expires_at: Option<String>,
    /// Extra environment for the job's process; absent or `null` means none.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// Wall-clock limit in seconds; absent or `null` means no limit.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Memory limit of the whole job in bytes (`submit --memory`), where a cgroup can hold it.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// CPU limit of the whole job in CPUs (`submit --cpus`), where a cgroup can hold it.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Only in a claim's answer: the token the job gets as `WHIRR_TOKEN`, good for
    /// recording its own run during this attempt (never the worker's own token).
    #[serde(default)]
    pub run_token: Option<String>,
}

impl Job {
    /// The run id to write files under: the server's, or `job-<id>` when it sent none.
    pub fn effective_run_id(&self) -> String {
        match &self.run_id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => format!("job-{}", self.id),
        }
    }
}

/// `POST /jobs/{id}/started`: the process was spawned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartedRequest {
    pub worker_id: String,
    pub attempt: u32,
    pub pid: u32,
    /// How the run's files reach the server: `"shared"` (written in place on the
    /// server's data dir) or `"shipped"` (uploaded by this worker); unsent means shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
    /// Where the job writes its run files on this machine (shown, never read there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<String>,
}

/// `POST /jobs/{id}/heartbeat`: renews the lease for `lease_seconds` from now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub worker_id: String,
    pub lease_seconds: u32,
    pub attempt: u32,
}

/// `POST /jobs/{id}/size_warning`: the run directory of the attempt this worker runs
/// measured `size` bytes, past its warning size `limit` (`--warn-run-dir-size`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeWarningRequest {
    pub worker_id: String,
    pub attempt: u32,
    pub size: u64,
    pub limit: u64,
}

/// Answer to a heartbeat; a `409` (lease lost) arrives as an [`ErrorBody`] instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    #[serde(default = "default_true")]
    pub success: bool,
    #[serde(default)]
    pub lease_expires_at: Option<String>,
    #[serde(default)]
    pub cancel_requested: bool,
}

/// What a job used, read from its cgroup as it ended (sent with `complete`/`fail`
/// where the worker held the job in one; older servers ignore it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobUsage {
    /// User plus system CPU time of every process of the job, in seconds.
    pub cpu_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_user_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_system_seconds: Option<f64>,
    /// Only where the memory controller accounts the job (`memory.peak`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
}

/// `POST /jobs/{id}/complete`: the process ended; `exit_code` is negative (minus the
/// signal number) when a signal ended it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub worker_id: String,
    pub exit_code: i32,
    pub run_id: Option<String>,
    pub error_message: Option<String>,
    pub attempt: u32,
    /// Sent only when known (no cgroup: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<JobUsage>,
}

/// `POST /jobs/{id}/fail`: the job could not start, it ran past its time limit, or the
/// worker's operator interrupted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailRequest {
    pub worker_id: String,
    pub error_message: String,
    pub attempt: u32,
    pub exit_code: Option<i32>,
    /// The job ran past its `timeout_seconds` (the server records `timed_out`).
    #[serde(default)]
    pub timed_out: bool,
    /// The worker's operator stopped it (a second signal): the server records
    /// `cancelled` and schedules no retry. Sent only when true (older servers ignore it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// What the job used, when known (sent only then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<JobUsage>,
}

/// `GET /health` (no auth). The worker reads `server_id` to tell whether its data dir
/// is the server's own (shared mode); an older server sends none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
}

/// `POST /runs/{id}/files/final`: the attempt-local sizes of the run's streams once the
/// job ended and everything was uploaded (lets the server say a tail is missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalFilesRequest {
    pub files: BTreeMap<String, u64>,
}

/// Answer to an upload: the attempt-local size of the server's copy afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SizeResponse {
    pub size: u64,
}

/// `POST /runs/{id}/artifacts/{path}/complete`: what the uploaded bytes must add up to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompleteArtifactRequest {
    pub size: u64,
    pub sha256: String,
}

/// Every 4xx/5xx answer: `{"detail": ...}`. `detail` is normally a string, but a
/// validation error may carry a list or object, so it is kept as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub detail: serde_json::Value,
}

impl ErrorBody {
    /// The detail as one line of text.
    pub fn message(&self) -> String {
        match &self.detail {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Decodes every fixture in `tests/fixtures/protocol/` with the type its entry in
    //! `manifest.json` names. Request fixtures must also re-encode to exactly the same
    //! JSON, so a renamed or missing field on either side fails here.

    use std::collections::BTreeSet;
    use std::fs;
    use std::path::PathBuf;

    use serde::de::DeserializeOwned;
    use serde_json::Value;

    use super::*;

    fn fixture_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/protocol")
    }

    #[derive(Deserialize)]
    struct Entry {
        file: String,
        method: String,
        path: String,
        direction: String,
        status: u16,
        #[serde(rename = "type")]
        type_name: String,
    }

    fn read(name: &str) -> Value {
        let path = fixture_dir().join(name);
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
    }

    /// Decodes `value` as `T`; for requests, also checks the exact re-encoding.
    fn check<T: DeserializeOwned + Serialize>(name: &str, value: &Value, exact: bool) {
        let decoded: T = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        if exact {
            let again = serde_json::to_value(&decoded).expect("encode");
            assert_eq!(&again, value, "{name} does not round-trip exactly");
        }
    }

    fn check_entry(entry: &Entry) {
        let value = read(&entry.file);
        let exact = entry.direction == "request";
        let name = entry.file.as_str();
        match entry.type_name.as_str() {
            "RegisterRequest" => check::<RegisterRequest>(name, &value, exact),
            "UnregisterRequest" => check::<UnregisterRequest>(name, &value, exact),
            "Ack" => check::<Ack>(name, &value, exact),
            "ClaimRequest" => check::<ClaimRequest>(name, &value, exact),
            "ClaimResponse" => check::<ClaimResponse>(name, &value, exact),
            "StartedRequest" => check::<StartedRequest>(name, &value, exact),
            "HeartbeatRequest" => check::<HeartbeatRequest>(name, &value, exact),
            "HeartbeatResponse" => check::<HeartbeatResponse>(name, &value, exact),
            "SizeWarningRequest" => check::<SizeWarningRequest>(name, &value, exact),
            "CompleteRequest" => check::<CompleteRequest>(name, &value, exact),
            "FailRequest" => check::<FailRequest>(name, &value, exact),
            "HealthResponse" => check::<HealthResponse>(name, &value, exact),
            "FinalFilesRequest" => check::<FinalFilesRequest>(name, &value, exact),
            "SizeResponse" => check::<SizeResponse>(name, &value, exact),
            "CompleteArtifactRequest" => check::<CompleteArtifactRequest>(name, &value, exact),
            "ErrorBody" => check::<ErrorBody>(name, &value, exact),
            // Bodies this worker neither sends nor reads (a direct run's start, the
            // readers' view of a run's files, a stored artifact's record): the Python
            // suite checks them against the server's schemas.
            "RunStartRequest" | "RunFiles" | "StoredArtifact" => {}
            other => panic!("{name}: unknown type {other} in manifest.json"),
        }
    }

    fn manifest() -> Vec<Entry> {
        serde_json::from_value(read("manifest.json")).expect("manifest.json entries")
    }

    #[test]
    fn every_fixture_decodes_with_its_type() {
        let entries = manifest();
        assert!(!entries.is_empty());
        for entry in &entries {
            assert!(
                ["GET", "POST", "PUT"].contains(&entry.method.as_str()),
                "{}",
                entry.file
            );
            assert!(entry.path.starts_with("/api/v1/"), "{}", entry.file);
            assert!(
                ["request", "response"].contains(&entry.direction.as_str()),
                "{}",
                entry.file
            );
            let is_error = entry.status >= 400;
            assert_eq!(is_error, entry.type_name == "ErrorBody", "{}", entry.file);
            check_entry(entry);
        }
    }

    #[test]
    fn manifest_lists_exactly_the_fixture_files() {
        let listed: BTreeSet<String> = manifest().into_iter().map(|e| e.file).collect();
        let on_disk: BTreeSet<String> = fs::read_dir(fixture_dir())
            .expect("fixture dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && n != "manifest.json")
            .collect();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn every_route_the_worker_uses_has_fixtures() {
        let entries = manifest();
        let routes = [
            "/api/v1/workers/register",
            "/api/v1/workers/unregister",
            "/api/v1/jobs/claim",
            "/api/v1/jobs/{id}/started",
            "/api/v1/jobs/{id}/heartbeat",
            "/api/v1/jobs/{id}/complete",
            "/api/v1/jobs/{id}/fail",
            "/api/v1/health",
        ];
        for route in routes {
            for direction in ["request", "response"] {
                if route.ends_with("/health") && direction == "request" {
                    continue; // a GET without a body
                }
                assert!(
                    entries
                        .iter()
                        .any(|e| e.path == route && e.direction == direction),
                    "no {direction} fixture for {route}"
                );
            }
        }
    }

    #[test]
    fn claim_with_job_keeps_env_timeout_and_ignores_extra_keys() {
        let response: ClaimResponse = serde_json::from_value(read("jobs_claim.response.json"))
            .expect("claim response decodes");
        let job = response.job.expect("a job");
        assert_eq!(job.attempt, 1);
        assert!(!job.command_argv.is_empty());
        assert!(job.env.is_some_and(|env| !env.is_empty()));
        assert!(job.timeout_seconds.is_some());
        assert!(job
            .run_token
            .is_some_and(|t| t.starts_with("whirr_run.42.1.")));
    }

    #[test]
    fn claim_minimal_job_defaults_absent_fields() {
        let response: ClaimResponse =
            serde_json::from_value(read("jobs_claim.response.minimal.json")).expect("decodes");
        let job = response.job.expect("a job");
        assert_eq!(job.env, None);
        assert_eq!(job.timeout_seconds, None);
        assert_eq!(job.run_token, None);
        assert_eq!(job.effective_run_id(), job.run_id.clone().expect("run id"));
    }

    #[test]
    fn claim_null_means_no_job() {
        let response: ClaimResponse =
            serde_json::from_value(read("jobs_claim.response.empty.json")).expect("decodes");
        assert!(response.job.is_none());
    }

    #[test]
    fn heartbeat_cancel_flag_decodes() {
        let ok: HeartbeatResponse =
            serde_json::from_value(read("jobs_heartbeat.response.json")).expect("decodes");
        assert!(!ok.cancel_requested);
        let cancel: HeartbeatResponse =
            serde_json::from_value(read("jobs_heartbeat.response.cancel.json")).expect("decodes");
        assert!(cancel.cancel_requested);
    }

    #[test]
    fn error_detail_renders_strings_and_lists() {
        let lost: ErrorBody =
            serde_json::from_value(read("jobs_heartbeat.response.409.json")).expect("decodes");
        assert!(!lost.message().is_empty());
        let list = ErrorBody {
            detail: serde_json::json!([{"loc": ["body"], "msg": "bad"}]),
        };
        assert!(list.message().contains("bad"));
    }

    #[test]
    fn run_id_falls_back_to_job_id() {
        let mut response: ClaimResponse =
            serde_json::from_value(read("jobs_claim.response.minimal.json")).expect("decodes");
        let job = response.job.as_mut().expect("a job");
        job.run_id = None;
        assert_eq!(job.effective_run_id(), format!("job-{}", job.id));
    }
}
