//! Scratch directories for unit tests (unique per process, test and moment).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

/// A new empty directory under the system's temp dir.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "whirr-worker-test-{}-{name}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
