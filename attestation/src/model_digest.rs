//! The model's identity (`model_blake3` in the enclave's claims, docs/claims.md): the digest
//! the enclave computes over its model directory, here so that auditors recompute it
//! (`cocoon-verify measure model DIR`) with the very function the enclave runs.
//!
//! BLAKE3 over, for each of [`MODEL_IDENTITY_FILES`] in order, the file name, a zero byte,
//! the file length as u64 little-endian and the file's bytes. The files are streamed (memory
//! stays bounded for multi-gigabyte models); a file whose length changes while it is read is
//! an error.

use crate::error::{Error, Result, Subject};
use std::io::Read;
use std::path::Path;

/// The files of a model directory that make up its identity, in digest order.
pub const MODEL_IDENTITY_FILES: [&str; 3] = ["model.json", "model.onnx", "tokenizer.json"];

/// Read buffer: large reads let BLAKE3 hash one read on every core (`update_rayon`).
const BUFFER: usize = 16 * 1024 * 1024;

/// The model directory's BLAKE3 identity.
pub fn model_blake3(dir: &Path) -> Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; BUFFER];
    for name in MODEL_IDENTITY_FILES {
        let path = dir.join(name);
        let io = |e: std::io::Error| Error::Io {
            subject: Subject::ModelDirectory,
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut file = std::fs::File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(&len.to_le_bytes());
        let mut copied = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            let part = buf.get(..n).unwrap_or_default();
            // Plain reads, not mmap (as b3sum does): a file truncated under an mmap faults
            // the process; each full read is hashed on every core.
            hasher.update_rayon(part);
            copied = copied.saturating_add(n as u64);
        }
        if copied != len {
            return Err(Error::FileChangedWhileHashed {
                path: path.display().to_string(),
                expected: len,
                actual: copied,
            });
        }
    }
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    use super::*;

    fn model_dir(tag: &str, files: &[(&str, &[u8])]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cocoon-model-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn the_digest_is_blake3_of_names_lengths_and_bytes_in_order() {
        let dir = model_dir(
            "layout",
            &[
                ("model.json", b"{}"),
                ("model.onnx", b"onnx"),
                ("tokenizer.json", b"tok"),
                ("other.bin", b"not measured"),
            ],
        );
        let mut want = blake3::Hasher::new();
        for (name, bytes) in [
            ("model.json", &b"{}"[..]),
            ("model.onnx", b"onnx"),
            ("tokenizer.json", b"tok"),
        ] {
            want.update(name.as_bytes());
            want.update(&[0]);
            want.update(&(bytes.len() as u64).to_le_bytes());
            want.update(bytes);
        }
        assert_eq!(model_blake3(&dir).unwrap(), *want.finalize().as_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = model_dir("missing", &[("model.json", b"{}")]);
        let e = model_blake3(&dir).unwrap_err();
        assert!(
            matches!(&e, Error::Io { subject: Subject::ModelDirectory, path, .. } if path.ends_with("model.onnx")),
            "{e:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
