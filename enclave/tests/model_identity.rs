//! The model identity in the claims: `model_blake3` over the model directory (docs/models.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use cocoon_enclave::inference::{model_blake3, InferenceError, MODEL_IDENTITY_FILES};

fn successor() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/models/successor")
}

#[test]
fn model_digest_is_blake3_of_the_documented_layout() {
    // The layout written out independently: name, NUL, u64 LE length, bytes — per file, in order.
    let mut expected = Vec::new();
    for name in ["model.json", "model.onnx", "tokenizer.json"] {
        let bytes = std::fs::read(successor().join(name)).unwrap();
        expected.extend_from_slice(name.as_bytes());
        expected.push(0);
        expected.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        expected.extend_from_slice(&bytes);
    }
    assert_eq!(
        MODEL_IDENTITY_FILES,
        ["model.json", "model.onnx", "tokenizer.json"]
    );
    assert_eq!(
        model_blake3(&successor()).unwrap(),
        *blake3::hash(&expected).as_bytes()
    );
}

#[test]
fn one_changed_byte_in_any_file_changes_the_model_digest() {
    let original = model_blake3(&successor()).unwrap();
    for name in MODEL_IDENTITY_FILES {
        let dir = tempfile::tempdir().unwrap();
        for file in MODEL_IDENTITY_FILES {
            std::fs::copy(successor().join(file), dir.path().join(file)).unwrap();
        }
        assert_eq!(
            model_blake3(dir.path()).unwrap(),
            original,
            "a copy hashes the same"
        );
        let mut bytes = std::fs::read(dir.path().join(name)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(dir.path().join(name), bytes).unwrap();
        assert_ne!(
            model_blake3(dir.path()).unwrap(),
            original,
            "{name} changed"
        );
    }
}

#[test]
fn a_missing_model_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        successor().join("model.json"),
        dir.path().join("model.json"),
    )
    .unwrap();
    let err = model_blake3(dir.path()).unwrap_err();
    assert!(
        matches!(&err, InferenceError::ModelFile { path, .. } if path.ends_with("model.onnx")),
        "{err:?}"
    );
}
