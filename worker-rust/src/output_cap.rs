//! A job's output, copied from its pipe into `output.log` under the worker's cap
//! (`--max-output-size`, issue 19): the job writes into a pipe (stdout and stderr both),
//! a thread of the worker appends what it reads to `output.log`.
//!
//! Past the cap the log keeps the head and the tail and drops the middle (a failed job's
//! traceback is at its end): the first `cap - tail` bytes go through, then a marker line;
//! from there only the last `tail = min(1 MiB, cap / 4)` bytes are kept in memory and
//! written, after a second marker, when the output ends. The log stays append-only, so
//! `whirr logs -f` and file shipping (byte offsets) work as before. The Python worker
//! (`whirr/worker/output_cap.py`) writes the same bytes.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::sizes::human_bytes;

/// The most of a capped output's end that is kept.
const TAIL_MAX: u64 = 1 << 20;
/// How long, once the job's processes are gone, the copier still reads what is left
/// (a process that escaped the job may hold the pipe open forever).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// How often a copier waiting on a quiet pipe looks whether it was told to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// One read from the pipe, at most.
const CHUNK: usize = 64 * 1024;

/// The parts of a cap: `head + tail == cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub cap: u64,
    pub head: u64,
    pub tail: u64,
}

impl Cap {
    pub fn new(cap: u64) -> Self {
        let tail = TAIL_MAX.min(cap / 4);
        Self {
            cap,
            head: cap - tail,
            tail,
        }
    }
}

/// One job's output through the cap: what to write of each piece read. Pure
/// bookkeeping over any writer, so it is tested without pipes or threads.
#[derive(Debug)]
pub struct Capper {
    cap: Option<Cap>,
    /// Bytes of output seen.
    total: u64,
    /// Whether the head written so far ends with a newline (true while empty).
    head_ends_line: bool,
    /// True once the head is full (the first marker written).
    capped: bool,
    /// The last bytes past the head, at most `cap.tail`.
    tail: VecDeque<u8>,
}

impl Capper {
    /// `None`: no cap, every byte goes through.
    pub fn new(cap: Option<u64>) -> Self {
        Self {
            cap: cap.map(Cap::new),
            total: 0,
            head_ends_line: true,
            capped: false,
            tail: VecDeque::new(),
        }
    }

    /// Takes the next piece of output, writing what goes to the log now.
    pub fn feed(&mut self, data: &[u8], out: &mut impl Write) -> io::Result<()> {
        let seen = self.total;
        self.total += data.len() as u64;
        let Some(cap) = self.cap else {
            return out.write_all(data);
        };
        if self.capped {
            self.keep(data, cap.tail);
            return Ok(());
        }
        let room = usize::try_from(cap.head - seen).unwrap_or(usize::MAX);
        if data.len() <= room {
            if let Some(&last) = data.last() {
                self.head_ends_line = last == b'\n';
            }
            return out.write_all(data);
        }
        let (head, rest) = data.split_at(room);
        if let Some(&last) = head.last() {
            self.head_ends_line = last == b'\n';
        }
        self.capped = true;
        self.keep(rest, cap.tail);
        let mut text = head.to_vec();
        if !self.head_ends_line {
            text.push(b'\n');
        }
        text.extend_from_slice(
            format!(
                "[whirr] output passed its cap of {} (--max-output-size): the rest is dropped, \
                 except its last {}, written when the job ends.\n",
                human_bytes(cap.cap),
                human_bytes(cap.tail)
            )
            .as_bytes(),
        );
        out.write_all(&text)
    }

    /// The output ended: if it was capped, the second marker and the kept tail.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some(cap) = self.cap.filter(|_| self.capped) else {
            return Ok(());
        };
        let kept = self.tail.len() as u64;
        let dropped = self.total - cap.head - kept;
        let mut text = format!(
            "[whirr] {} ({dropped} bytes) of output dropped; its last {} follow.\n",
            human_bytes(dropped),
            human_bytes(kept)
        )
        .into_bytes();
        text.extend(self.tail.drain(..));
        out.write_all(&text)
    }

    /// Keeps the last `limit` bytes of what went past the head.
    fn keep(&mut self, data: &[u8], limit: u64) {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let data = &data[data.len().saturating_sub(limit)..];
        self.tail.extend(data);
        let excess = self.tail.len().saturating_sub(limit);
        self.tail.drain(..excess);
    }
}

/// The thread that copies one job's pipe into its `output.log`.
#[derive(Debug)]
pub struct OutputCopier {
    /// Set when the job's processes are gone: read until then at most.
    stop_at: Arc<Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl OutputCopier {
    /// Starts copying from `pipe` (the read end) to `log` (opened for appending).
    pub fn start(pipe: OwnedFd, log: File, cap: Option<u64>) -> io::Result<Self> {
        let stop_at = Arc::new(Mutex::new(None));
        let stop = Arc::clone(&stop_at);
        let thread = thread::Builder::new()
            .name("output".into())
            .spawn(move || copy(File::from(pipe), log, Capper::new(cap), &stop))?;
        Ok(Self {
            stop_at,
            thread: Some(thread),
        })
    }

    /// Once the job's processes are gone: reads what is left for at most `limit`
    /// (until end of input, when every writer closed its end), writes the capped tail
    /// and closes the pipe. `output.log` is complete when this returns.
    pub fn finish(&mut self, limit: Duration) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        *self.stop_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + limit);
        if thread.join().is_err() {
            say!("the output copier of a job failed; its output.log may lack its end");
        }
    }
}

impl Drop for OutputCopier {
    fn drop(&mut self) {
        self.finish(DRAIN_LIMIT);
    }
}

/// The copier's loop: read, cap, append; at end of input or past the stop time, the
/// tail. A log that cannot be written is said once, and the pipe still read to its end,
/// so the job never blocks on a full pipe.
fn copy(mut pipe: File, mut log: File, mut capper: Capper, stop_at: &Mutex<Option<Instant>>) {
    let mut buf = vec![0u8; CHUNK];
    let mut failed = false;
    let mut note = |result: io::Result<()>| {
        if let Err(e) = result {
            if !failed {
                failed = true;
                say!("cannot write a job's output.log: {e}; its output is lost");
            }
        }
    };
    loop {
        let stop = *stop_at.lock().unwrap_or_else(PoisonError::into_inner);
        if stop.is_some_and(|at| Instant::now() >= at) {
            break;
        }
        let wait = PollTimeout::try_from(STOP_CHECK).unwrap_or(PollTimeout::NONE);
        match poll(&mut [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)], wait) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                say!("cannot wait on a job's output: {e}");
                break;
            }
        }
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => note(capper.feed(&buf[..n], &mut log)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                say!("cannot read a job's output: {e}");
                break;
            }
        }
    }
    note(capper.finish(&mut log));
    // The pipe closes here: a process of the job that still writes gets EPIPE.
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// The log `pieces` make under `cap`.
    fn capped(cap: Option<u64>, pieces: &[&[u8]]) -> Vec<u8> {
        let mut capper = Capper::new(cap);
        let mut out = Vec::new();
        for piece in pieces {
            capper.feed(piece, &mut out).expect("writes");
        }
        capper.finish(&mut out).expect("writes");
        out
    }

    #[test]
    fn the_tail_is_a_quarter_of_the_cap_and_at_most_one_mib() {
        assert_eq!(
            Cap::new(MIB),
            Cap {
                cap: MIB,
                head: 768 * 1024,
                tail: 256 * 1024
            }
        );
        assert_eq!(Cap::new(1 << 30).tail, MIB);
        assert_eq!(Cap::new(1 << 30).head, (1 << 30) - MIB);
        assert_eq!(
            Cap::new(3),
            Cap {
                cap: 3,
                head: 3,
                tail: 0
            }
        );
    }

    #[test]
    fn output_under_the_cap_or_without_one_goes_through_unchanged() {
        let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let pieces: Vec<&[u8]> = data.chunks(4096).collect();
        assert_eq!(capped(None, &pieces), data);
        assert_eq!(capped(Some(MIB), &pieces), data);
        // Exactly the head: nothing was dropped, so no marker.
        let head = vec![b'x'; 768 * 1024];
        assert_eq!(capped(Some(MIB), &[&head]), head);
    }

    #[test]
    fn past_the_cap_the_head_a_marker_the_tail_and_what_was_dropped() {
        // 3 MiB of numbered lines, in pieces that do not end on line ends.
        let mut data = Vec::new();
        let mut i = 0;
        while data.len() < 3 * MIB as usize {
            data.extend_from_slice(format!("line {i:07}\n").as_bytes());
            i += 1;
        }
        let pieces: Vec<&[u8]> = data.chunks(5000).collect();
        let log = capped(Some(MIB), &pieces);
        let head = 768 * 1024;
        let tail = 256 * 1024;
        let dropped = data.len() - head - tail;
        let mut expected = data[..head].to_vec();
        expected.push(b'\n'); // the head ends inside a line
        expected.extend_from_slice(
            b"[whirr] output passed its cap of 1.0 MiB (--max-output-size): the rest is \
              dropped, except its last 256.0 KiB, written when the job ends.\n",
        );
        expected.extend_from_slice(
            format!(
                "[whirr] {} ({dropped} bytes) of output dropped; its last 256.0 KiB follow.\n",
                human_bytes(dropped as u64)
            )
            .as_bytes(),
        );
        expected.extend_from_slice(&data[data.len() - tail..]);
        assert_eq!(log, expected);
        // Job bytes in the log: never more than the cap.
        assert_eq!(head + tail, MIB as usize);
    }

    #[test]
    fn a_head_that_ends_a_line_gets_no_extra_newline_and_a_short_tail_is_all_kept() {
        let cap = 64;
        // head 48, tail 16.
        let head_line = [b'a'; 47].iter().chain(b"\n").copied().collect::<Vec<u8>>();
        let log = capped(Some(cap), &[&head_line, b"0123456789", b"ab"]);
        let mut expected = head_line.clone();
        expected.extend_from_slice(
            b"[whirr] output passed its cap of 64 B (--max-output-size): the rest is dropped, \
              except its last 16 B, written when the job ends.\n",
        );
        expected.extend_from_slice(
            b"[whirr] 0 B (0 bytes) of output dropped; its last 12 B follow.\n0123456789ab",
        );
        assert_eq!(
            String::from_utf8_lossy(&log),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_across_many_small_pieces() {
        let cap = 40; // head 30, tail 10
        let data: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        let pieces: Vec<&[u8]> = data.chunks(3).collect();
        let log = capped(Some(cap), &pieces);
        assert!(log.starts_with(&data[..30]));
        assert!(log.ends_with(
            &[
                b"of output dropped; its last 10 B follow.\n".as_slice(),
                &data[190..]
            ]
            .concat()
        ));
        assert!(String::from_utf8_lossy(&log).contains("[whirr] 160 B (160 bytes) of output"));
    }

    fn temp_log(name: &str) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!(
            "whirr-output-cap-{}-{name}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("output.log");
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .expect("log");
        (path, file)
    }

    #[test]
    fn the_copier_copies_a_pipe_to_its_end() {
        let (path, log) = temp_log("copy");
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let mut copier = OutputCopier::start(read, log, Some(MIB)).expect("starts");
        let mut writer = File::from(write);
        let data: Vec<u8> = (0..=255u8).cycle().take(2 * MIB as usize).collect();
        writer.write_all(&data).expect("writes");
        drop(writer);
        let started = Instant::now();
        copier.finish(DRAIN_LIMIT);
        assert!(started.elapsed() < DRAIN_LIMIT, "end of input ends it");
        let log = std::fs::read(&path).expect("log");
        assert!(log.starts_with(&data[..768 * 1024]));
        assert!(log.ends_with(&data[data.len() - 256 * 1024..]));
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }

    #[test]
    fn a_writer_that_keeps_the_pipe_open_is_cut_off_after_the_limit() {
        let (path, log) = temp_log("held");
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let mut copier = OutputCopier::start(read, log, None).expect("starts");
        let mut writer = File::from(write);
        writer.write_all(b"before\n").expect("writes");
        let started = Instant::now();
        copier.finish(Duration::from_millis(300));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert_eq!(std::fs::read(&path).expect("log"), b"before\n");
        // The read end is closed: the leftover writer gets EPIPE (Rust ignores SIGPIPE).
        let err = writer.write_all(b"after\n").expect_err("pipe closed");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
