//! End-to-end tests of the `whirr-worker` binary against a scripted in-process fake
//! server speaking the `/api/v1` protocol (the real server is exercised by
//! `tests/e2e/test_rust_worker.py`). Each test runs real job processes.

use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// What the fake server answers to heartbeats.
#[derive(Clone, Copy, PartialEq)]
enum Beat {
    Ok,
    Cancel,
    LeaseLost,
    /// 404: the server has no such job (any more).
    NotFound,
    /// 503: the server is there but cannot answer (its database restarts).
    Unavailable,
}

struct State {
    jobs: VecDeque<Value>,
    /// Every request: (path, body, Authorization header, when it arrived).
    log: Vec<(String, Value, Option<String>, Instant)>,
    beat: Beat,
    /// Answer this many claims with 503 first.
    claim_failures: usize,
    /// Answer register with this status (200 when None).
    register_status: Option<u16>,
    /// Answer this many complete reports with 503 first.
    complete_failures: usize,
    /// Hold requests whose path ends with one of these open (up to a minute).
    hang: Vec<&'static str>,
}

impl State {
    fn new() -> Self {
        Self {
            jobs: VecDeque::new(),
            log: Vec::new(),
            beat: Beat::Ok,
            claim_failures: 0,
            register_status: None,
            complete_failures: 0,
            hang: Vec::new(),
        }
    }
}

struct FakeServer {
    url: String,
    state: Arc<Mutex<State>>,
}

impl FakeServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::new()));
        let shared = state.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                thread::spawn(move || serve(stream, &state));
            }
        });
        Self { url, state }
    }

    fn push_job(&self, id: i64, argv: &[&str], workdir: &Path, extra: Value) {
        let mut job = json!({
            "id": id, "name": format!("job{id}"), "command_argv": argv,
            "workdir": workdir, "config": {}, "tags": [], "status": "running",
            "attempt": 1, "worker_id": "w", "created_at": "2025-06-01T12:00:00Z",
            "started_at": null, "finished_at": null, "exit_code": null,
            "run_id": format!("job-{id}"), "lease_expires_at": "2025-06-01T12:01:00Z",
            "unknown_future_key": [1, 2, 3]
        });
        if let (Some(job), Some(extra)) = (job.as_object_mut(), extra.as_object()) {
            job.extend(extra.clone());
        }
        self.state.lock().unwrap().jobs.push_back(job);
    }

    fn requests(&self, path: &str) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(p, _, _, _)| p == path)
            .map(|(_, body, _, _)| body.clone())
            .collect()
    }

    /// When each request to `path` arrived.
    fn times(&self, path: &str) -> Vec<Instant> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .filter(|(p, _, _, _)| p == path)
            .map(|(_, _, _, at)| *at)
            .collect()
    }

    fn auth_headers(&self) -> Vec<Option<String>> {
        let state = self.state.lock().unwrap();
        state
            .log
            .iter()
            .map(|(_, _, auth, _)| auth.clone())
            .collect()
    }

    fn wait_for_request(&self, path: &str, timeout: Duration) -> Value {
        wait_until(timeout, || self.requests(path).last().cloned())
            .unwrap_or_else(|| panic!("no request to {path} within {timeout:?}"))
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let mut length = 0usize;
    let mut auth = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("authorization:") {
            auth = Some(line["authorization:".len()..].trim().to_owned());
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (status, answer) = route(&path, &body, auth, state);
    let text = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
}

fn route(path: &str, body: &Value, auth: Option<String>, state: &Mutex<State>) -> (u16, Value) {
    state
        .lock()
        .unwrap()
        .log
        .push((path.to_owned(), body.clone(), auth, Instant::now()));
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(60) {
        let hang = state.lock().unwrap().hang.clone();
        if !hang.iter().any(|suffix| path.ends_with(suffix)) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    if path == "/workers/register" {
        let status = state.lock().unwrap().register_status.unwrap_or(200);
        if status != 200 {
            return (status, json!({"detail": "Missing or invalid bearer token"}));
        }
        return (200, json!({"message": "registered", "success": true}));
    }
    if path == "/jobs/claim" {
        let wait = body["wait"].as_f64().unwrap_or(0.0);
        let until = Instant::now() + Duration::from_secs_f64(wait);
        loop {
            {
                let mut s = state.lock().unwrap();
                if s.claim_failures > 0 {
                    s.claim_failures -= 1;
                    return (503, json!({"detail": "database is restarting"}));
                }
                if let Some(job) = s.jobs.pop_front() {
                    return (200, json!({ "job": job }));
                }
            }
            if Instant::now() >= until {
                return (200, json!({ "job": null }));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    if path.ends_with("/heartbeat") {
        return match state.lock().unwrap().beat {
            Beat::Ok => (
                200,
                json!({"success": true, "lease_expires_at": null, "cancel_requested": false}),
            ),
            Beat::Cancel => (
                200,
                json!({"success": true, "lease_expires_at": null, "cancel_requested": true}),
            ),
            Beat::LeaseLost => (409, json!({"detail": "lease lost"})),
            Beat::NotFound => (404, json!({"detail": "Job #1 not found"})),
            Beat::Unavailable => (503, json!({"detail": "database is restarting"})),
        };
    }
    if path.ends_with("/complete") {
        let mut s = state.lock().unwrap();
        if s.complete_failures > 0 {
            s.complete_failures -= 1;
            return (503, json!({"detail": "database is restarting"}));
        }
    }
    if path.ends_with("/started") {
        return (200, json!({"success": true}));
    }
    (200, json!({"message": "ok", "success": true}))
}

fn wait_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "whirr-worker-it-{}-{name}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

struct Worker {
    child: Child,
    data_dir: PathBuf,
    /// Where its stderr goes (a file, so a test can wait on a line while it runs).
    log: PathBuf,
}

impl Worker {
    fn start(server: &FakeServer, name: &str, extra: &[&str]) -> Self {
        let data_dir = tempdir(name);
        let log = tempdir(&format!("{name}-log")).join("stderr.log");
        let stderr = fs::File::create(&log).expect("worker log");
        let child = Command::new(env!("CARGO_BIN_EXE_whirr-worker"))
            .args(["-s", &server.url, "-d"])
            .arg(&data_dir)
            .args([
                "--poll-interval",
                "0.2",
                "--lease-seconds",
                "10",
                "--heartbeat-interval",
                "0.2",
                "--kill-grace",
                "1",
                "--worker-id",
                "w",
            ])
            .args(extra)
            .env_remove("WHIRR_TOKEN")
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("worker starts");
        Self {
            child,
            data_dir,
            log,
        }
    }

    /// Waits until the worker's stderr holds `needle`; false after `timeout`.
    fn said(&self, needle: &str, timeout: Duration) -> bool {
        let found = || {
            fs::read_to_string(&self.log)
                .unwrap_or_default()
                .contains(needle)
                .then_some(())
        };
        wait_until(timeout, found).is_some()
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).expect("signal worker");
    }

    /// Waits for the worker to exit; returns its exit code and stderr.
    fn finish(mut self, timeout: Duration) -> (Option<i32>, String) {
        let status = wait_until(timeout, || self.child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let stderr = fs::read_to_string(&self.log).unwrap_or_default();
        let _ = fs::remove_dir_all(&self.data_dir);
        if let Some(dir) = self.log.parent() {
            let _ = fs::remove_dir_all(dir);
        }
        (status.and_then(|s| s.code()), stderr)
    }

    fn log_of(&self, run_id: &str) -> String {
        fs::read_to_string(self.data_dir.join("runs").join(run_id).join("output.log"))
            .unwrap_or_default()
    }
}

fn pid_alive(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn assert_gone(pid: i64) {
    let gone = wait_until(Duration::from_secs(5), || (!pid_alive(pid)).then_some(()));
    assert!(gone.is_some(), "process {pid} is still alive");
}

const T: Duration = Duration::from_secs(15);

#[test]
fn runs_jobs_reports_exit_codes_and_drains_on_sigint() {
    let server = FakeServer::start();
    let workdir = tempdir("wd");
    server.push_job(
        1,
        &["sh", "-c", "echo out $WHIRR_JOB_ID $WHIRR_RUN_ID $PYTHONUNBUFFERED $CUDA_VISIBLE_DEVICES $EXTRA; pwd; echo err >&2; exit 3"],
        &workdir,
        json!({"env": {"EXTRA": "x1"}}),
    );
    server.push_job(2, &["true"], &workdir, json!({"timeout_seconds": null}));
    let worker = Worker::start(&server, "basic", &["--gpu", "2", "--token", "sekrit"]);
    wait_until(T, || {
        (server.requests("/api/v1/jobs/2/complete").len() == 1).then_some(())
    })
    .expect("both jobs complete");

    let register = server.requests("/api/v1/workers/register");
    assert_eq!(register[0]["worker_id"], "w");
    assert_eq!(register[0]["gpu_ids"], json!([2]));
    let first = &server.requests("/api/v1/jobs/1/complete")[0];
    assert_eq!(first["exit_code"], 3);
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["run_id"], "job-1");
    assert_eq!(first["error_message"], Value::Null);
    assert_eq!(
        server.requests("/api/v1/jobs/2/complete")[0]["exit_code"],
        0
    );
    let started = &server.requests("/api/v1/jobs/1/started")[0];
    assert!(started["pid"].as_u64().is_some_and(|p| p > 0));
    let claim = &server.requests("/api/v1/jobs/claim")[0];
    assert_eq!(claim["gpu_id"], 2);
    assert_eq!(claim["lease_seconds"], 10);
    assert!(server
        .auth_headers()
        .iter()
        .all(|a| a.as_deref() == Some("Bearer sekrit")));

    let log = worker.log_of("job-1");
    assert!(log.contains("out 1 job-1 1 2 x1"), "{log}");
    assert!(log.contains(workdir.to_str().expect("utf8")), "{log}");
    assert!(log.contains("err"), "{log}");

    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(server.requests("/api/v1/workers/unregister").len(), 1);
}

#[test]
fn jobs_that_cannot_start_are_failed_not_fatal() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-fail");
    server.push_job(1, &[], &workdir, json!({}));
    server.push_job(2, &["whirr-no-such-exe"], &workdir, json!({}));
    server.push_job(3, &["true"], &workdir.join("missing"), json!({}));
    server.push_job(4, &["true"], &workdir, json!({"run_id": "../escape"}));
    server.push_job(
        5,
        &["true"],
        &workdir,
        json!({"command_argv": "not a list"}),
    );
    server.push_job(6, &["true"], &workdir, json!({}));
    let worker = Worker::start(&server, "fail", &[]);
    server.wait_for_request("/api/v1/jobs/6/complete", T);
    let message = |id: i64| {
        server.requests(&format!("/api/v1/jobs/{id}/fail"))[0]["error_message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(message(1).contains("empty command"), "{}", message(1));
    assert!(
        message(2).contains("executable not found"),
        "{}",
        message(2)
    );
    assert!(message(3).contains("working directory"), "{}", message(3));
    assert!(message(4).contains("unsafe run id"), "{}", message(4));
    assert!(
        message(5).contains("could not read the job"),
        "{}",
        message(5)
    );
    assert!(worker.log_of("job-2").contains("executable not found"));
    worker.signal(Signal::SIGTERM);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn cancel_request_ends_the_process_group_and_reports_the_signal() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-cancel");
    server.push_job(1, &["sh", "-c", "sleep 300 & wait"], &workdir, json!({}));
    let worker = Worker::start(&server, "cancel", &[]);
    let started = server.wait_for_request("/api/v1/jobs/1/started", T);
    let pid = started["pid"].as_i64().expect("pid");
    assert!(pid_alive(pid));
    server.state.lock().unwrap().beat = Beat::Cancel;
    let complete = server.wait_for_request("/api/v1/jobs/1/complete", T);
    assert_eq!(complete["exit_code"], -15);
    assert_gone(pid);
    worker.signal(Signal::SIGINT);
    assert_eq!(worker.finish(T).0, Some(0));
}

/// A heartbeat answered with `beat` means the lease is gone: the job is killed and nothing
/// is reported for it; the worker's stderr is returned for the caller's checks.
fn a_lost_lease_kills_the_job_and_reports_nothing(beat: Beat, name: &str) -> String {
    let server = FakeServer::start();
    let workdir = tempdir(&format!("wd-{name}"));
    server.push_job(1, &["sleep", "300"], &workdir, json!({}));
    let worker = Worker::start(&server, name, &[]);
    let pid = server.wait_for_request("/api/v1/jobs/1/started", T)["pid"]
        .as_i64()
        .expect("pid");
    server.state.lock().unwrap().beat = beat;
    assert_gone(pid);
    thread::sleep(Duration::from_millis(500));
    assert!(server.requests("/api/v1/jobs/1/complete").is_empty());
    assert!(server.requests("/api/v1/jobs/1/fail").is_empty());
    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
    stderr
}

#[test]
fn lost_lease_kills_the_job_and_reports_nothing() {
    a_lost_lease_kills_the_job_and_reports_nothing(Beat::LeaseLost, "lease");
}

#[test]
fn timeout_ends_the_job_and_reports_a_failure() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-timeout");
    server.push_job(
        1,
        &["sleep", "300"],
        &workdir,
        json!({"timeout_seconds": 0.5}),
    );
    let worker = Worker::start(&server, "timeout", &[]);
    let fail = server.wait_for_request("/api/v1/jobs/1/fail", T);
    assert_eq!(fail["error_message"], "timed out after 0.5s");
    assert_eq!(fail["exit_code"], -15);
    assert_eq!(fail["timed_out"], true);
    worker.signal(Signal::SIGINT);
    assert_eq!(worker.finish(T).0, Some(0));
}

#[test]
fn second_signal_ends_the_running_job() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-sig2");
    server.push_job(1, &["sleep", "300"], &workdir, json!({}));
    let worker = Worker::start(&server, "sig2", &[]);
    let pid = server.wait_for_request("/api/v1/jobs/1/started", T)["pid"]
        .as_i64()
        .expect("pid");
    worker.signal(Signal::SIGINT);
    // Counted before the next one: two signals close together may arrive as one.
    assert!(
        worker.said("draining", T),
        "no drain after the first signal"
    );
    assert!(pid_alive(pid), "first signal must let the job run");
    worker.signal(Signal::SIGINT);
    // An operator's stop: SIGTERM, reported as an interrupt (cancelled, no retry).
    let fail = server.wait_for_request("/api/v1/jobs/1/fail", T);
    assert_eq!(fail["exit_code"], -15);
    assert_eq!(fail["interrupted"], true);
    assert_eq!(fail["error_message"], "worker interrupted");
    assert!(server.requests("/api/v1/jobs/1/complete").is_empty());
    assert_gone(pid);
    assert_eq!(worker.finish(T).0, Some(0));
    assert_eq!(server.requests("/api/v1/workers/unregister").len(), 1);
}

#[test]
fn second_signal_while_idle_exits_at_once() {
    let server = FakeServer::start();
    // The first signal ends the idle worker's claim at once; its goodbye hangs, so the
    // second signal finds it idle and exits without a second goodbye.
    server
        .state
        .lock()
        .unwrap()
        .hang
        .push("/workers/unregister");
    let worker = Worker::start(&server, "idle", &["--poll-interval", "30"]);
    server.wait_for_request("/api/v1/jobs/claim", T);
    worker.signal(Signal::SIGTERM);
    server.wait_for_request("/api/v1/workers/unregister", T);
    worker.signal(Signal::SIGTERM);
    let started = Instant::now();
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(128 + 15), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(1), "{stderr}");
    assert_eq!(server.requests("/api/v1/workers/unregister").len(), 1);
}

#[test]
fn killing_the_worker_kills_its_job_and_grandchildren() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-kill9");
    // The grandchild ignores SIGTERM too: only the reaper's SIGKILL can end it.
    server.push_job(
        1,
        &["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait"],
        &workdir,
        json!({}),
    );
    let worker = Worker::start(&server, "kill9", &[]);
    let pid = server.wait_for_request("/api/v1/jobs/1/started", T)["pid"]
        .as_i64()
        .expect("pid");
    let grandchild: i64 = wait_until(T, || worker.log_of("job-1").trim().parse().ok())
        .expect("grandchild pid in the log");
    assert!(pid_alive(grandchild));
    worker.signal(Signal::SIGKILL);
    assert_gone(pid);
    assert_gone(grandchild);
    let _ = worker.finish(T);
}

#[test]
fn server_errors_are_retried() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-retry");
    server.state.lock().unwrap().claim_failures = 2;
    server.push_job(1, &["true"], &workdir, json!({}));
    let worker = Worker::start(&server, "retry", &[]);
    let complete = server.wait_for_request("/api/v1/jobs/1/complete", T);
    assert_eq!(complete["exit_code"], 0);
    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0));
    assert!(stderr.contains("503"), "{stderr}");
}

#[test]
fn rejected_token_is_a_clear_error() {
    let server = FakeServer::start();
    server.state.lock().unwrap().register_status = Some(401);
    let worker = Worker::start(&server, "auth", &["--token", "wrong"]);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("Error: cannot register worker w"),
        "{stderr}"
    );
    assert!(stderr.contains("--token"), "{stderr}");
    // It never registered, so it does not claim to have unregistered.
    assert!(!stderr.contains("unregistered"), "{stderr}");
    assert!(server.requests("/api/v1/workers/unregister").is_empty());
}

#[test]
fn unreachable_server_is_retried_until_a_signal() {
    // Nothing listens on this port.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let fake = FakeServer {
        url,
        state: Arc::new(Mutex::new(State::new())),
    };
    let worker = Worker::start(&fake, "unreachable", &[]);
    thread::sleep(Duration::from_millis(1500));
    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("register failed"), "{stderr}");
}

#[test]
fn heartbeat_404_kills_the_job_and_reports_nothing() {
    let stderr = a_lost_lease_kills_the_job_and_reports_nothing(Beat::NotFound, "notfound");
    assert!(stderr.contains("lease lost"), "{stderr}");
}

#[test]
fn heartbeats_failing_with_503_keep_the_job_until_the_fence_point() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-fence");
    server.push_job(1, &["sleep", "300"], &workdir, json!({}));
    let worker = Worker::start(&server, "fence", &[]);
    let pid = server.wait_for_request("/api/v1/jobs/1/started", T)["pid"]
        .as_i64()
        .expect("pid");
    let beats = "/api/v1/jobs/1/heartbeat";
    wait_until(T, || (!server.requests(beats).is_empty()).then_some(())).expect("a heartbeat");
    server.state.lock().unwrap().beat = Beat::Unavailable;
    let outage = Instant::now();
    let before = server.requests(beats).len();
    // The job keeps running while the server fails, and renewals keep being tried.
    wait_until(T, || {
        (server.requests(beats).len() >= before + 3).then_some(())
    })
    .expect("heartbeats go on during the outage");
    assert!(pid_alive(pid), "a 503 must not stop the job");
    // lease 10 s - margin (grace 1 s + 1% + 1 s) = 7.9 s after the last renewal that got
    // through was sent, the worker stops its copy (the server would hand the job out again
    // at 10 s) and reports nothing.
    let gone = wait_until(Duration::from_secs(20), || (!pid_alive(pid)).then_some(()));
    assert!(gone.is_some(), "the job outlived its lease");
    let waited = outage.elapsed();
    assert!(waited >= Duration::from_secs(7), "ended after {waited:?}");
    assert!(
        waited < Duration::from_secs(10),
        "ended after {waited:?}: past the lease"
    );
    thread::sleep(Duration::from_millis(300));
    assert!(server.requests("/api/v1/jobs/1/complete").is_empty());
    assert!(server.requests("/api/v1/jobs/1/fail").is_empty());
    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("(fenced)"), "{stderr}");
}

#[test]
fn a_failing_report_is_retried_every_couple_of_seconds() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-report");
    server.state.lock().unwrap().complete_failures = 5;
    server.push_job(1, &["sleep", "1"], &workdir, json!({}));
    let worker = Worker::start(&server, "report", &[]);
    let path = "/api/v1/jobs/1/complete";
    wait_until(T, || (server.requests(path).len() == 6).then_some(()))
        .expect("the report lands on its sixth try");
    let times = server.times(path);
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // The old back-off waited 0.5, 1, 2, 4, 8 s... (up to 30 s): longer than a lease.
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(2600)),
        "{gaps:?}"
    );
    assert_eq!(server.requests(path)[5]["attempt"], 1);
    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn report_retries_end_with_the_lease() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-report-lease");
    server.state.lock().unwrap().complete_failures = usize::MAX;
    server.push_job(1, &["sleep", "1"], &workdir, json!({}));
    let worker = Worker::start(&server, "report-lease", &[]);
    let path = "/api/v1/jobs/1/complete";
    server.wait_for_request(path, T);
    let last_beat = *server
        .times("/api/v1/jobs/1/heartbeat")
        .last()
        .expect("a heartbeat");
    // Tries stop by the end of the lease (10 s after the last renewal), not 10 minutes on.
    let stopped = wait_until(Duration::from_secs(20), || {
        let tries = server.requests(path).len();
        thread::sleep(Duration::from_millis(2500));
        (server.requests(path).len() == tries).then_some(())
    });
    assert!(stopped.is_some(), "the report is still being retried");
    let last_try = *server.times(path).last().expect("tries");
    assert!(
        last_try <= last_beat + Duration::from_millis(10_500),
        "a try {:?} after the last renewal",
        last_try - last_beat
    );
    worker.signal(Signal::SIGINT);
    let (code, stderr) = worker.finish(T);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("its lease is over"), "{stderr}");
}

#[test]
fn a_signal_ends_a_pending_claim_at_once() {
    let server = FakeServer::start();
    server.state.lock().unwrap().hang.push("/jobs/claim");
    let worker = Worker::start(&server, "hung-claim", &["--poll-interval", "30"]);
    server.wait_for_request("/api/v1/jobs/claim", T);
    worker.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    let (code, stderr) = worker.finish(T);
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        took < Duration::from_millis(1500),
        "exited {took:?} after SIGTERM"
    );
    assert_eq!(server.requests("/api/v1/workers/unregister").len(), 1);
}

#[test]
fn a_second_signal_ends_a_hanging_report_soon() {
    let server = FakeServer::start();
    let workdir = tempdir("wd-hung-report");
    server.state.lock().unwrap().hang.push("/complete");
    server.push_job(1, &["true"], &workdir, json!({}));
    let worker = Worker::start(&server, "hung-report", &[]);
    server.wait_for_request("/api/v1/jobs/1/complete", T);
    worker.signal(Signal::SIGTERM);
    thread::sleep(Duration::from_millis(200));
    worker.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    let (code, stderr) = worker.finish(T);
    let took = signalled.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    // REPORT_WHEN_STOPPING (2 s) for the pending report, then out.
    assert!(
        took < Duration::from_millis(3500),
        "exited {took:?} after SIGTERM"
    );
    assert!(stderr.contains("complete abandoned"), "{stderr}");
}
