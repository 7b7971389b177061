//! `cocoon-verify measure config DIR` (git SHA-256 tree hash of a configuration folder, as
//! COCOON's `spec.tree`) and `cocoon-verify measure model DIR` (the enclave's `model_blake3`).

use crate::{BadInput, EXIT_ACCEPTED};
use clap::Args;
use cocoon_attestation::config_tree;
use cocoon_attestation::eventlog::runtime::cocoon_records;
use cocoon_attestation::model_digest::{model_blake3_with, ReadMode, MODEL_IDENTITY_FILES};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `cocoon-verify measure config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration folder (`runtime/`, hidden files and .gitignore'd files excluded).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `cocoon-verify measure model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The model directory (model.json, model.onnx, tokenizer.json).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A value that cannot be computed is a bad input (exit 2), like an unreadable file.
fn failed(e: &cocoon_attestation::Error) -> BadInput {
    BadInput(format!("[{}] {}", e.kind(), e.message()))
}

/// `measure config`.
pub fn config(args: &ConfigArgs, out: &mut dyn Write) -> Result<u8, BadInput> {
    let tree = match config_tree::tree_hash(&args.dir) {
        Ok(t) => t,
        Err(e) => return Err(failed(&e)),
    };
    let tree_hex = hex::encode(tree.tree_hash);
    let mut rtmr3 = [[0u8; 48]; 4];
    cocoon_records(&tree_hex).replay_onto(&mut rtmr3);
    let rtmr3 = hex::encode(rtmr3.get(3).copied().unwrap_or([0; 48]));
    if args.json {
        let v = json!({
            "tree_hash": tree_hex,
            "cocoon_rtmr3": rtmr3,
            "files": tree.files.iter().map(|f| json!({
                "path": f.path, "mode": f.mode, "blob": hex::encode(f.blob),
            })).collect::<Vec<_>>(),
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    } else {
        let _ = writeln!(out, "files measured ({}):", tree.files.len());
        for f in &tree.files {
            let _ = writeln!(out, "  {} {}  {}", f.mode, hex::encode(f.blob), f.path);
        }
        let _ = writeln!(out, "tree hash (git, SHA-256): {tree_hex}");
        let _ = writeln!(
            out,
            "COCOON RTMR3 (spec.tree, then tdx_inited, from zero): {rtmr3}"
        );
    }
    Ok(EXIT_ACCEPTED)
}

/// `measure model`.
pub fn model(args: &ModelArgs, out: &mut dyn Write) -> Result<u8, BadInput> {
    // Memory-mapped like b3sum: the auditor's own files, not the enclave's (docs/measure-identity.md).
    let digest = match model_blake3_with(&args.dir, ReadMode::Mmap) {
        Ok(d) => d,
        Err(e) => return Err(failed(&e)),
    };
    let sizes: Vec<(String, u64)> = MODEL_IDENTITY_FILES
        .iter()
        .map(|n| {
            let size = std::fs::metadata(args.dir.join(n))
                .map(|m| m.len())
                .unwrap_or(0);
            ((*n).to_string(), size)
        })
        .collect();
    if args.json {
        let v = json!({
            "model_blake3": hex::encode(digest),
            "files": sizes.iter().map(|(n, s)| json!({"name": n, "size": s})).collect::<Vec<_>>(),
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    } else {
        for (n, s) in &sizes {
            let _ = writeln!(out, "  {n}  {s} bytes");
        }
        let _ = writeln!(out, "model_blake3: {}", hex::encode(digest));
    }
    Ok(EXIT_ACCEPTED)
}
