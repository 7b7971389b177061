//! Test-only access to the real evidence in `../shared/vectors` (next to the checkout).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

/// Path of a file under `shared/vectors`.
pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/vectors")
        .join(relative)
}

/// Bytes of a file under `shared/vectors`; panics with the path if missing.
pub fn read(relative: &str) -> Vec<u8> {
    let p = path(relative);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading test vector {}: {e}", p.display()))
}
