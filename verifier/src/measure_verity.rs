//! `cocoon-verify measure verity`: the dm-verity root hash (and optionally the hash device)
//! of an image, byte-exact with `veritysetup format` (format 1, sha256, 4096/4096).
//! Exit 0 with the value, 2 when it cannot be computed (usage, unreadable data, unwritable
//! hash device).

use crate::{BadInput, EXIT_ACCEPTED};
use clap::Args;
use cocoon_attestation::verity::{self, VerityParams};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_FROM: u64 = 64 * 1024 * 1024;

/// Arguments of `cocoon-verify measure verity`.
#[derive(Debug, Args)]
pub struct VerityArgs {
    /// The data image (file or block device).
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// Salt in hex, or `-` for none (default: 32 random bytes, as veritysetup).
    #[arg(long, value_name = "HEX|-")]
    pub salt: Option<String>,
    /// The superblock's UUID (default: random, as veritysetup).
    #[arg(long, value_name = "UUID")]
    pub uuid: Option<String>,
    /// No superblock on the hash device (the root hash is the same).
    #[arg(long)]
    pub no_superblock: bool,
    /// Write the hash device here (atomically: temporary file, fsync, rename).
    #[arg(long, value_name = "FILE")]
    pub hash_out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn bad(e: &cocoon_attestation::Error) -> BadInput {
    BadInput(format!("[{}] {}", e.kind(), e.message()))
}

/// Runs the command; `progress_to` gets the progress bar when given.
pub fn run(
    args: &VerityArgs,
    out: &mut dyn Write,
    mut progress_to: Option<&mut dyn Write>,
) -> Result<u8, BadInput> {
    let salt = match args.salt.as_deref() {
        Some("-") => Vec::new(),
        Some(h) => hex::decode(h).map_err(|e| BadInput(format!("--salt {h:?}: {e}")))?,
        None => verity::random_salt().map_err(|e| bad(&e))?.to_vec(),
    };
    let uuid = match args.uuid.as_deref() {
        Some(u) => verity::parse_uuid(u).map_err(|e| bad(&e))?,
        None => verity::random_uuid().map_err(|e| bad(&e))?,
    };
    let params = VerityParams {
        salt,
        uuid,
        superblock: !args.no_superblock,
    };
    std::fs::metadata(&args.data)
        .map_err(|e| BadInput(format!("cannot read data {}: {e}", args.data.display())))?;
    let mut last_percent = u64::MAX;
    let mut progress = |done: u64, total: u64| {
        if total < PROGRESS_FROM {
            return;
        }
        if let Some(w) = progress_to.as_mut() {
            let percent = done.saturating_mul(100).checked_div(total).unwrap_or(100);
            if percent != last_percent {
                last_percent = percent;
                let filled = usize::try_from(percent / 2).unwrap_or(50);
                let _ = write!(
                    w,
                    "\r[{:<50}] {percent:>3}% {} / {} MiB",
                    "#".repeat(filled),
                    done >> 20,
                    total >> 20
                );
                if done >= total {
                    let _ = writeln!(w);
                }
            }
        }
    };
    // Parameters, unreadable data or an unwritable hash device: exit 2.
    let tree = verity::build_file(&args.data, &params, args.hash_out.as_deref(), &mut progress)
        .map_err(|e| bad(&e))?;
    let size = tree.data_size;
    let salt_text = if params.salt.is_empty() {
        "-".to_string()
    } else {
        hex::encode(&params.salt)
    };
    if args.json {
        let v = json!({
            "root_hash": hex::encode(tree.root_hash),
            "salt": salt_text,
            "uuid": params.superblock.then(|| verity::format_uuid(&params.uuid)),
            "superblock": params.superblock,
            "format": 1,
            "hash": "sha256",
            "data_block_size": 4096,
            "hash_block_size": 4096,
            "data_size": size,
            "data_blocks": tree.data_blocks,
            "hash_levels": tree.levels,
            "hash_device_size": tree.hash_device_size,
            "hash_out": args.hash_out.as_ref().map(|p| p.display().to_string()),
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            out,
            "dm-verity format 1, sha256, data/hash blocks 4096/4096"
        );
        let _ = writeln!(
            out,
            "data blocks:      {} ({} bytes{})",
            tree.data_blocks,
            size,
            if size.checked_rem(4096) != Some(0) {
                ", the partial last block is not covered"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "salt:             {salt_text}");
        if params.superblock {
            let _ = writeln!(
                out,
                "uuid:             {}",
                verity::format_uuid(&params.uuid)
            );
        } else {
            let _ = writeln!(out, "superblock:       none");
        }
        let _ = writeln!(out, "hash device size: {} bytes", tree.hash_device_size);
        if let Some(p) = &args.hash_out {
            let _ = writeln!(out, "hash device:      {}", p.display());
        }
        let _ = writeln!(out, "root hash:        {}", hex::encode(tree.root_hash));
    }
    Ok(EXIT_ACCEPTED)
}
