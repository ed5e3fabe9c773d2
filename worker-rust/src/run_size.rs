//! The size of a running job's run directory against the worker's warning size
//! (`--warn-run-dir-size`, default 10 GiB), as the Python worker does it
//! (`whirr/worker/run_size.py`): a job that writes a checkpoint every epoch can fill a
//! disk the whole machine shares.
//!
//! Now and then the directory is measured; the first time it is past the size, the
//! worker logs a line and records `run.size_warning` on the server. Only a warning:
//! nothing is stopped or deleted. It warns again only after the directory fell below the
//! size and passed it anew. Cheap by construction: a walk of `lstat` calls (no file read,
//! no symlink followed) over at most [`MAX_ENTRIES`] entries (then the count is a lower
//! bound, enough to tell a directory already past the size), at most once per
//! [`check_every`] per job.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Entries one measurement looks at, at most (~0.1 s on a local disk).
pub const MAX_ENTRIES: u64 = 100_000;
/// The longest between two measurements of one job.
const MAX_CHECK_EVERY: Duration = Duration::from_secs(60);

/// Time between two measurements of one job's directory: 2 heartbeats, at most a minute.
pub fn check_every(heartbeat: Duration) -> Duration {
    MAX_CHECK_EVERY.min(heartbeat * 2)
}

/// Bytes of the files under `root` (their sizes, symlinks not followed), and whether
/// every entry was counted (false: it stopped at `max_entries`, a lower bound).
pub fn measure(root: &Path, max_entries: u64) -> (u64, bool) {
    let (mut total, mut seen) = (0u64, 0u64);
    let mut pending: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        // Removed meanwhile, or not readable: nothing to count there.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            seen += 1;
            if seen > max_entries {
                return (total, false);
            }
            // DirEntry::metadata does not follow symlinks.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                total = total.saturating_add(meta.len());
            }
        }
    }
    (total, true)
}

/// One attempt's directory against the warning size: when to measure, and whether a
/// measurement is a new crossing.
#[derive(Debug)]
pub struct SizeWatch {
    pub limit: u64,
    every: Duration,
    next_check: Instant,
    /// True while the directory is known to be past the size and this was recorded.
    warned: bool,
}

impl SizeWatch {
    pub fn new(limit: u64, every: Duration, now: Instant) -> Self {
        Self {
            limit,
            every,
            next_check: now + every,
            warned: false,
        }
    }

    /// Measures `run_dir` when due; the size when it is a new crossing (to record).
    pub fn crossed(&mut self, run_dir: &Path, now: Instant) -> Option<u64> {
        if now < self.next_check {
            return None;
        }
        self.next_check = now + self.every;
        let (size, _) = measure(run_dir, MAX_ENTRIES); // a lower bound: enough to tell
        if size <= self.limit {
            self.warned = false; // below again: a later crossing is news again
            return None;
        }
        (!self.warned).then_some(size)
    }

    /// The crossing was recorded (a failed record is tried at the next measurement).
    pub fn recorded(&mut self) {
        self.warned = true;
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "whirr-run-size-{}-{name}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn measure_sums_file_sizes_without_following_symlinks() {
        let dir = tempdir("measure");
        fs::write(dir.join("a"), vec![0u8; 1000]).expect("write");
        fs::create_dir_all(dir.join("sub/deeper")).expect("dirs");
        fs::write(dir.join("sub/deeper/b"), vec![0u8; 234]).expect("write");
        let outside = tempdir("outside");
        fs::write(outside.join("big"), vec![0u8; 100_000]).expect("write");
        std::os::unix::fs::symlink(&outside, dir.join("link")).expect("link");
        let link_len = fs::symlink_metadata(dir.join("link")).expect("lstat").len();
        assert_eq!(measure(&dir, MAX_ENTRIES), (1234 + link_len, true));
        // Past the entry limit: a lower bound, said as such.
        let (partial, complete) = measure(&dir, 2);
        assert!(!complete);
        assert!(partial <= 1234 + link_len);
        assert_eq!(measure(&dir.join("gone"), MAX_ENTRIES), (0, true));
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&outside);
    }

    #[test]
    fn a_crossing_is_news_once_until_the_directory_falls_below_again() {
        let dir = tempdir("watch");
        let every = Duration::from_secs(1);
        let start = Instant::now();
        let mut watch = SizeWatch::new(100, every, start);
        fs::write(dir.join("f"), vec![0u8; 200]).expect("write");
        assert_eq!(watch.crossed(&dir, start), None, "not due yet");
        let mut now = start + every;
        assert_eq!(watch.crossed(&dir, now), Some(200));
        // Not recorded (the request failed): tried at the next measurement.
        now += every;
        assert_eq!(watch.crossed(&dir, now), Some(200));
        watch.recorded();
        now += every;
        assert_eq!(watch.crossed(&dir, now), None, "said once");
        fs::write(dir.join("f"), vec![0u8; 50]).expect("shrink");
        now += every;
        assert_eq!(watch.crossed(&dir, now), None);
        fs::write(dir.join("f"), vec![0u8; 300]).expect("grow");
        now += every;
        assert_eq!(watch.crossed(&dir, now), Some(300), "a new crossing");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn measurements_are_two_heartbeats_apart_at_most_a_minute() {
        assert_eq!(
            check_every(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
        assert_eq!(
            check_every(Duration::from_secs(20)),
            Duration::from_secs(40)
        );
        assert_eq!(
            check_every(Duration::from_secs(200)),
            Duration::from_secs(60)
        );
    }
}
