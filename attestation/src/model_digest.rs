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

/// How [`model_blake3_with`] reads the files (the digest is the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Plain reads into a buffer, each hashed on every core. A file that shrinks or fails
    /// to read while hashed is an error. What the enclave uses.
    Stream,
    /// Memory-mapped and hashed on every core, as `b3sum` does (faster on cached files).
    /// A file truncated by another process while it is mapped faults the process: for
    /// auditors' machines (`cocoon-verify measure model`), not for the enclave.
    Mmap,
}

/// The model directory's BLAKE3 identity, read with [`ReadMode::Stream`].
pub fn model_blake3(dir: &Path) -> Result<[u8; 32]> {
    model_blake3_with(dir, ReadMode::Stream)
}

/// The model directory's BLAKE3 identity, reading the files as `mode` says.
pub fn model_blake3_with(dir: &Path, mode: ReadMode) -> Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = match mode {
        ReadMode::Stream => vec![0u8; BUFFER],
        ReadMode::Mmap => Vec::new(),
    };
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
        let copied = match mode {
            ReadMode::Stream => {
                let mut copied = 0u64;
                loop {
                    let n = file.read(&mut buf).map_err(io)?;
                    if n == 0 {
                        break;
                    }
                    let part = buf.get(..n).unwrap_or_default();
                    hasher.update_rayon(part);
                    copied = copied.saturating_add(n as u64);
                }
                copied
            }
            ReadMode::Mmap => {
                drop(file);
                let before = hasher.count();
                hasher.update_mmap_rayon(&path).map_err(io)?;
                hasher.count().saturating_sub(before)
            }
        };
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
    fn mmap_and_stream_reads_give_the_same_digest() {
        // Larger than the 16 MiB read buffer and than blake3's mmap threshold, odd length.
        let big: Vec<u8> = (0..(17 * 1024 * 1024 + 12345u32))
            .map(|i| (i * 7 + i / 4096) as u8)
            .collect();
        let dir = model_dir(
            "modes",
            &[
                ("model.json", b"{}"),
                ("model.onnx", &big),
                ("tokenizer.json", b"t"),
            ],
        );
        let mut want = blake3::Hasher::new();
        for (name, bytes) in [
            ("model.json", &b"{}"[..]),
            ("model.onnx", &big),
            ("tokenizer.json", b"t"),
        ] {
            want.update(name.as_bytes());
            want.update(&[0]);
            want.update(&(bytes.len() as u64).to_le_bytes());
            want.update(bytes);
        }
        let want = *want.finalize().as_bytes();
        assert_eq!(model_blake3_with(&dir, ReadMode::Stream).unwrap(), want);
        assert_eq!(model_blake3_with(&dir, ReadMode::Mmap).unwrap(), want);
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
