//! Shipping against an in-memory server that keeps the protocol's rules (attempt bases,
//! offsets, idempotent retries, gaps, stale attempts, sha256-checked artifacts), with
//! failures injected where a real network would drop a request ([`FakeServer`]).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use super::*;
use crate::fake_files_server::FakeServer;
use crate::testdirs::tempdir;

struct Setup {
    dir: PathBuf,
    run_dir: PathBuf,
    store: LedgerStore,
}

fn setup(name: &str) -> Setup {
    let dir = tempdir(name);
    let run_dir = dir.join("runs/job-1");
    fs::create_dir_all(run_dir.join("artifacts")).expect("run dir");
    let store = LedgerStore::open(&dir).expect("store");
    Setup {
        dir,
        run_dir,
        store,
    }
}

impl Setup {
    fn append(&self, name: &str, data: &[u8]) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run_dir.join(name))
            .expect("open");
        file.write_all(data).expect("append");
    }

    fn run(&self, attempt: u32) -> RunShip {
        let ledger = new_ledger("job-1", attempt, &self.run_dir);
        self.store.claim(&ledger).expect("claim");
        RunShip::new(ledger)
    }
}

/// Rounds until `Finished` (at most 50).
fn finish(run: &mut RunShip, api: &FakeServer, store: &LedgerStore) {
    run.ledger.ended = true;
    for _ in 0..50 {
        match run.round(api, store) {
            Ok(Round::Finished) => return,
            Ok(_) | Err(ShipError::Api(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    panic!("shipping did not finish in 50 rounds");
}

#[test]
fn running_jsonl_ships_whole_lines_and_the_end_ships_the_rest() {
    let s = setup("ship-lines");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    s.append("output.log", b"step 1\npartial");
    s.append("metrics.jsonl", b"{\"_idx\":0}\n{\"_idx\":1,\"lo");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(api.file("output.log"), b"step 1\npartial");
    assert_eq!(api.file("metrics.jsonl"), b"{\"_idx\":0}\n");
    s.append("metrics.jsonl", b"ss\":2}\n{\"_idx\":2");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(
        api.file("metrics.jsonl"),
        b"{\"_idx\":0}\n{\"_idx\":1,\"loss\":2}\n"
    );
    finish(&mut run, &api, &s.store);
    let local = fs::read(s.run_dir.join("metrics.jsonl")).expect("local");
    assert_eq!(api.file("metrics.jsonl"), local);
    let (attempt, sizes) = api
        .state()
        .finals
        .last()
        .cloned()
        .expect("final sizes sent");
    assert_eq!(attempt, 1);
    assert_eq!(sizes["metrics.jsonl"], local.len() as u64);
    assert_eq!(sizes["system.jsonl"], 0);
    assert!(!sizes.contains_key("meta.json"), "no meta.json was written");
    assert!(
        s.store.load_all().is_empty(),
        "the ledger is gone once all is shipped"
    );
}

#[test]
fn an_earlier_attempts_bytes_are_not_shipped_again() {
    let s = setup("ship-attempt");
    s.append("metrics.jsonl", b"{\"_idx\":41}\n"); // attempt 1's, or a seeded line
    let api = FakeServer::new(2);
    let mut run = s.run(2);
    s.append("metrics.jsonl", b"{\"_idx\":42}\n");
    finish(&mut run, &api, &s.store);
    assert_eq!(api.file("metrics.jsonl"), b"{\"_idx\":42}\n");
    assert_eq!(
        api.state().finals.last().expect("sent").1["metrics.jsonl"],
        12
    );
}

#[test]
fn an_unreachable_server_loses_and_doubles_nothing() {
    let s = setup("ship-retry");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    for i in 0..20 {
        s.append("output.log", format!("line {i}\n").as_bytes());
        if i % 3 == 0 {
            api.state().fail_next = 1;
        }
        let _ = run.round(&api, &s.store);
    }
    finish(&mut run, &api, &s.store);
    assert_eq!(
        api.file("output.log"),
        fs::read(s.run_dir.join("output.log")).expect("local")
    );
}

#[test]
fn a_resent_piece_is_not_doubled_and_a_gap_resumes_from_the_servers_size() {
    let s = setup("ship-gap");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    s.append("output.log", b"0123456789");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    // A worker killed before its ledger recorded the ack sends the same bytes again.
    run.ledger
        .streams
        .get_mut("output.log")
        .expect("stream")
        .acked = 4;
    s.append("output.log", b"abc");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(api.file("output.log"), b"0123456789abc");
    // A ledger ahead of the server (the server lost a tail): a gap, then the rest.
    api.state()
        .files
        .insert("output.log".into(), b"0123".to_vec());
    s.append("output.log", b"def");
    finish(&mut run, &api, &s.store);
    assert_eq!(api.file("output.log"), b"0123456789abcdef");
}

#[test]
fn a_stale_attempt_stops_shipping() {
    let s = setup("ship-stale");
    let api = FakeServer::new(3);
    let mut run = s.run(2);
    s.append("output.log", b"late\n");
    assert!(matches!(
        run.round(&api, &s.store),
        Err(ShipError::Stale(_))
    ));
    assert!(api.file("output.log").is_empty());
}

#[test]
fn a_ledger_taken_over_by_a_newer_attempt_stops_the_old_one() {
    let s = setup("ship-superseded");
    let api = FakeServer::new(1);
    let mut old = s.run(1);
    let _new = s.run(2);
    s.append("output.log", b"x\n");
    assert!(matches!(
        old.round(&api, &s.store),
        Err(ShipError::Stale(_))
    ));
    assert_eq!(s.store.load_all()[0].attempt, 2);
}

#[test]
fn whole_files_go_again_when_they_change() {
    let s = setup("ship-whole");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    fs::write(s.run_dir.join("meta.json"), b"{\"a\":1}").expect("write");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(api.file("meta.json"), b"{\"a\":1}");
    let calls = api.state().calls;
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(
        api.state().calls,
        calls,
        "an unchanged file is not sent again"
    );
    fs::write(s.run_dir.join("meta.json"), b"{\"a\":1,\"b\":2}").expect("write");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(api.file("meta.json"), b"{\"a\":1,\"b\":2}");
    // The final sizes carry the whole files too, so the server can say complete.
    finish(&mut run, &api, &s.store);
    let sizes = api.state().finals.last().cloned().expect("sent").1;
    assert_eq!(sizes["meta.json"], 13);
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

#[test]
fn artifacts_go_up_in_pieces_checked_by_sha256_and_resume_after_a_break() {
    let s = setup("ship-artifact");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    let big = pattern(usize::try_from(ARTIFACT_PIECE).expect("fits") + 123_457);
    fs::create_dir_all(s.run_dir.join("artifacts/ckpt")).expect("dir");
    fs::write(s.run_dir.join("artifacts/ckpt/model.pt"), &big).expect("write");
    fs::write(s.run_dir.join("artifacts/empty.txt"), b"").expect("write");
    // Being written by save_artifact: not shipped.
    fs::write(s.run_dir.join("artifacts/.model.pt.77.tmp"), b"half").expect("write");
    // The connection breaks 1 MiB into the first piece (the server keeps that much).
    api.state().cut_artifact_after = Some(1 << 20);
    assert!(matches!(
        run.round(&api, &s.store),
        Err(ShipError::Api(ApiError::Transport(_)))
    ));
    assert_eq!(api.state().partial["ckpt/model.pt"].len(), 1 << 20);
    finish(&mut run, &api, &s.store);
    let server = api.state();
    assert!(server.artifacts["ckpt/model.pt"] == big, "bytes differ");
    assert_eq!(server.artifacts["empty.txt"], b"");
    assert_eq!(server.artifacts.len(), 2, "{:?}", server.artifacts.keys());
}

#[test]
fn a_changed_artifact_is_uploaded_again() {
    let s = setup("ship-artifact-again");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    let path = s.run_dir.join("artifacts/best.txt");
    fs::write(&path, b"epoch 1").expect("write");
    assert_eq!(run.round(&api, &s.store), Ok(Round::Idle));
    assert_eq!(api.state().artifacts["best.txt"], b"epoch 1");
    fs::write(&path, b"epoch 2, better").expect("write");
    finish(&mut run, &api, &s.store);
    assert_eq!(api.state().artifacts["best.txt"], b"epoch 2, better");
}

#[test]
fn symlinks_are_not_followed() {
    let s = setup("ship-symlink");
    let api = FakeServer::new(1);
    let mut run = s.run(1);
    let secret = s.dir.join("secret");
    fs::write(&secret, b"do not ship").expect("write");
    std::os::unix::fs::symlink(&secret, s.run_dir.join("meta.json")).expect("link");
    std::os::unix::fs::symlink(&secret, s.run_dir.join("artifacts/x")).expect("link");
    finish(&mut run, &api, &s.store);
    assert!(api.file("meta.json").is_empty());
    assert!(api.state().artifacts.is_empty());
}
