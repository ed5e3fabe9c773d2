//! Where a job's run files end up: written in place on the server's own data dir
//! (shared mode), or written here and shipped by this worker (shipped mode). And, for a
//! retried attempt on a machine without the run's earlier files, the seed that keeps
//! `_idx` going.
#![forbid(unsafe_code)]

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::client::{ApiError, Client};

/// How this worker's runs reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesMode {
    /// The data dir is the server's (its `server-id` matches): files are written in place.
    Shared,
    /// Files are written here and shipped.
    Shipped,
}

impl FilesMode {
    /// The value of the start report's `files` field.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Shipped => "shipped",
        }
    }
}

/// The mode for `data_dir` given the id the server answered with: shared when the data
/// dir holds a `server-id` file with that id, or when the server has no id (it predates
/// shipping and takes no files, so there is nothing else to do).
pub fn mode_for(data_dir: &Path, server_id: Option<&str>) -> FilesMode {
    let Some(server_id) = server_id else {
        return FilesMode::Shared;
    };
    match fs::read_to_string(data_dir.join("server-id")) {
        Ok(local) if local.trim() == server_id.trim() => FilesMode::Shared,
        _ => FilesMode::Shipped,
    }
}

/// Asks the server for its id and decides the mode.
pub fn detect(client: &Client, data_dir: &Path) -> Result<FilesMode, ApiError> {
    let server_id = client.server_id()?;
    let mode = mode_for(data_dir, server_id.as_deref());
    if server_id.is_none() {
        say!("the server does not say its id (it predates file shipping): run files are written in place");
    }
    Ok(mode)
}

/// Windows read from the end of the server's `metrics.jsonl` to find its last line.
const SEED_WINDOWS: [u64; 3] = [64 << 10, 1 << 20, 16 << 20];

/// The last complete line of `data` (which ends with `\n`); `None` when `data` holds
/// no whole line, or when it starts mid-line (`at_start` false) with no earlier newline.
pub fn last_line(data: &[u8], at_start: bool) -> Option<&[u8]> {
    let body = data.strip_suffix(b"\n")?;
    match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => Some(&body[i + 1..]),
        None if at_start => Some(body),
        None => None,
    }
}

/// Before attempt 2+ of a run starts on a machine whose `metrics.jsonl` for it is
/// missing or empty, copies the server's last metrics line there, so the tracking
/// library continues `_idx` after it. Returns whether a line was seeded. Best effort:
/// a server that cannot say leaves the file as it is.
pub fn seed_metrics(client: &Client, run_id: &str, run_dir: &Path) -> io::Result<bool> {
    let path = run_dir.join("metrics.jsonl");
    if fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
        return Ok(false);
    }
    let Some(line) = server_last_line(client, run_id) else {
        return Ok(false);
    };
    crate::process::private_dirs(run_dir)?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    let mut row = line;
    row.push(b'\n');
    file.write_all(&row)?;
    Ok(true)
}

fn server_last_line(client: &Client, run_id: &str) -> Option<Vec<u8>> {
    let size = match client.run_raw(run_id, "metrics", 0, 1) {
        Ok((_, size)) => size,
        Err(e) => {
            say!("{run_id}: cannot read the server's metrics to continue _idx: {e}");
            return None;
        }
    };
    if size == 0 {
        return None;
    }
    for window in SEED_WINDOWS {
        let offset = size.saturating_sub(window);
        let (data, _) = client.run_raw(run_id, "metrics", offset, window).ok()?;
        if let Some(line) = last_line(&data, offset == 0) {
            // Only a JSON row is worth seeding; anything else would confuse the reader.
            let is_row = serde_json::from_slice::<serde_json::Value>(line)
                .is_ok_and(|v| v.get("_idx").is_some());
            return is_row.then(|| line.to_vec());
        }
        if offset == 0 {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdirs::tempdir;

    #[test]
    fn the_mode_follows_the_server_id_file() {
        let dir = tempdir("mode");
        assert_eq!(mode_for(&dir, Some("abc123")), FilesMode::Shipped);
        fs::write(dir.join("server-id"), "abc123\n").expect("write");
        assert_eq!(mode_for(&dir, Some("abc123")), FilesMode::Shared);
        assert_eq!(mode_for(&dir, Some("other")), FilesMode::Shipped);
        // An old server: nothing to ship to.
        assert_eq!(mode_for(&dir, None), FilesMode::Shared);
        assert_eq!(FilesMode::Shipped.wire_name(), "shipped");
    }

    #[test]
    fn the_last_line_is_found_in_a_window() {
        assert_eq!(
            last_line(b"{\"_idx\":0}\n{\"_idx\":1}\n", true),
            Some(&b"{\"_idx\":1}"[..])
        );
        assert_eq!(
            last_line(b"{\"_idx\":0}\n", true),
            Some(&b"{\"_idx\":0}"[..])
        );
        // A window that starts mid-line: that fragment is no line.
        assert_eq!(last_line(b"x\":3}\n", false), None);
        assert_eq!(
            last_line(b"x\":3}\n{\"_idx\":4}\n", false),
            Some(&b"{\"_idx\":4}"[..])
        );
        assert_eq!(last_line(b"", true), None);
        assert_eq!(last_line(b"no newline", true), None);
    }
}
