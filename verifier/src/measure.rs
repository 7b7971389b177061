//! `cocoon-verify measure snp|tdx`: recompute launch measurements from public image files
//! (issue #6 items 1-2). The computation is in `cocoon_attestation::measure`; this module reads
//! the files (firmware and kernels bounded, kernel/initrd hashes streamed), compares with an
//! expected value when one is given, and renders the result.
//!
//! Exit codes: 0 computed (and equal to `--expected…` when given); 1 computed and different
//! from the expected value, or refused (e.g. a kernel for a firmware that cannot measure it);
//! 2 usage or unreadable / malformed input.

use crate::{BadInput, EXIT_ACCEPTED, EXIT_REJECTED};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use cocoon_attestation::measure::ovmf::{Ovmf, SevMetadata};
use cocoon_attestation::measure::rtmr::{self, QemuLayout};
use cocoon_attestation::measure::snp::{self, Firmware, KernelHashes, SnpParams, Vmm};
use cocoon_attestation::measure::tdx::{self, PageOrder};
use cocoon_attestation::measure::{authenticode, parse_hex_digest};
use cocoon_attestation::Error;
use serde_json::{json, Map, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest firmware image read.
const MAX_FIRMWARE: u64 = 64 * 1024 * 1024;
/// Largest kernel read whole (TDX: Authenticode needs the image).
const MAX_KERNEL: u64 = 512 * 1024 * 1024;
/// Largest OVMF metadata JSON read (initrds are never read whole: hashed as a stream).
const MAX_METADATA: u64 = 1024 * 1024;

const MEASURE_EXIT_CODES: &str = "\
Exit codes:
  0  computed (and equal to every --expected… value given)
  1  computed but different from an expected value, or refused (a kernel for a firmware
     without the SNP_KERNEL_HASHES section)
  2  usage error, unreadable file, or malformed input (firmware, metadata, kernel, hex)

See docs/measure.md for what each value is and the assumptions behind RTMR1/RTMR2.";

#[derive(Debug, Subcommand)]
pub enum MeasureCommand {
    /// SEV-SNP launch digest (or SEV / SEV-ES with --mode) of an OVMF direct boot, as
    /// sev-snp-measure computes it.
    #[command(
        group(ArgGroup::new("firmware").required(true).args(["ovmf", "ovmf_hash"])),
        after_help = MEASURE_EXIT_CODES
    )]
    Snp(SnpArgs),
    /// TDX MRTD of a TDVF (OVMF) image, and RTMR1/RTMR2 of a direct boot when kernel, initrd
    /// or command line are given.
    #[command(after_help = MEASURE_EXIT_CODES)]
    Tdx(TdxArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SevMode {
    /// SEV-SNP: 48-byte launch digest (the report's MEASUREMENT).
    Snp,
    /// SEV-ES: 32-byte launch digest.
    Seves,
    /// SEV: 32-byte launch digest.
    Sev,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VmmArg {
    Qemu,
    Ec2,
    Gce,
}

#[derive(Debug, Args)]
pub struct SnpArgs {
    /// The OVMF firmware image (e.g. OVMF.amdsev.fd).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["ovmf_hash", "ovmf_metadata"])]
    ovmf: Option<PathBuf>,
    /// A precomputed OVMF hash (hex, 48 bytes; `--json` output of a run with --ovmf gives it)
    /// instead of the image; needs --ovmf-metadata.
    #[arg(long, value_name = "HEX", requires = "ovmf_metadata")]
    ovmf_hash: Option<String>,
    /// The firmware's SEV metadata as JSON (sections, sev_hashes_table_gpa, sev_es_reset_eip;
    /// the `ovmf_metadata` object of a `--json` run with --ovmf).
    #[arg(long, value_name = "FILE", requires = "ovmf_hash")]
    ovmf_metadata: Option<PathBuf>,
    /// The kernel file QEMU loads (-kernel).
    #[arg(long, value_name = "FILE", conflicts_with = "kernel_hash")]
    kernel: Option<PathBuf>,
    /// SHA-256 of the kernel file (hex) instead of the file.
    #[arg(long, value_name = "HEX")]
    kernel_hash: Option<String>,
    /// The initrd file (-initrd); needs a kernel.
    #[arg(long, value_name = "FILE", conflicts_with = "initrd_hash")]
    initrd: Option<PathBuf>,
    /// SHA-256 of the initrd file (hex) instead of the file.
    #[arg(long, value_name = "HEX")]
    initrd_hash: Option<String>,
    /// The kernel command line (-append); needs a kernel.
    #[arg(long, value_name = "STR")]
    append: Option<String>,
    /// Number of vCPUs (required for SNP and SEV-ES).
    #[arg(long, value_name = "N")]
    vcpus: Option<u32>,
    /// QEMU vCPU model (EPYC, EPYC-v1..v4, EPYC-IBPB, EPYC-Rome[-v1..v3], EPYC-Milan[-v1,v2],
    /// EPYC-Genoa[-v1], EPYC-Turin). Ignored by EC2 and GCE conventions.
    #[arg(long, value_name = "NAME", default_value = "EPYC-v4")]
    vcpu_type: String,
    /// Whose initial vCPU register state the VMSAs follow.
    #[arg(long, value_enum, default_value = "qemu")]
    vmm: VmmArg,
    /// SEV_FEATURES of the VMSAs, hex (0x1: SNP; 0x21: SNP + DebugSwap, QEMU ≥ 9 default on
    /// some hosts). Default 0x1, as sev-snp-measure.
    #[arg(long, value_name = "HEX", default_value = "0x1")]
    guest_features: String,
    /// SEV generation to measure.
    #[arg(long, value_enum, default_value = "snp")]
    mode: SevMode,
    /// Compare with this digest (hex): exit 1 when it differs.
    #[arg(long, value_name = "HEX")]
    expected: Option<String>,
    /// Print JSON (`"measurement"` and the inputs) instead of the human report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct TdxArgs {
    /// The TDVF firmware image (unified OVMF.fd with TDX metadata, e.g. OVMF.inteltdx.fd).
    #[arg(long, value_name = "FILE")]
    ovmf: PathBuf,
    /// Order of TDH.MEM.PAGE.ADD / TDH.MR.EXTEND: `single` (KVM ≥ 6.16, QEMU ≥ 10.1) or
    /// `two-pass` (older TDX host stacks).
    #[arg(long, value_name = "ORDER", default_value = "single", value_parser = ["single", "two-pass"])]
    page_order: String,
    /// The kernel (bzImage with EFI stub) for RTMR1.
    #[arg(long, value_name = "FILE")]
    kernel: Option<PathBuf>,
    /// The initrd for RTMR2.
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,
    /// The kernel command line for RTMR2.
    #[arg(long, value_name = "STR")]
    append: Option<String>,
    /// Hash the kernel as OVMF ≤ edk2-stable202502 does: after QEMU patched its setup header
    /// (needs --memory).
    #[arg(long, requires = "memory")]
    qemu_patched_header: bool,
    /// The firmware extends its ReadyToBoot separator into RTMR0 only (older OVMF; current
    /// edk2 extends it into RTMR1).
    #[arg(long)]
    no_rtmr1_separator: bool,
    /// Guest memory for --qemu-patched-header: bytes or with a K/M/G suffix (as QEMU's -m).
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// QEMU's ACPI area below the top of low memory, for --qemu-patched-header.
    #[arg(long, value_name = "BYTES", default_value_t = QemuLayout::DEFAULT_ACPI_DATA_SIZE)]
    acpi_data_size: u32,
    /// Compare the MRTD with this value (hex): exit 1 when it differs.
    #[arg(long, value_name = "HEX")]
    expected_mrtd: Option<String>,
    /// Compare RTMR1 with this value (hex).
    #[arg(long, value_name = "HEX")]
    expected_rtmr1: Option<String>,
    /// Compare RTMR2 with this value (hex).
    #[arg(long, value_name = "HEX")]
    expected_rtmr2: Option<String>,
    /// Print JSON (`"mrtd"`, and `"rtmr1"` / `"rtmr2"` when computed).
    #[arg(long)]
    json: bool,
}

/// Runs a `measure` subcommand.
pub fn run(command: MeasureCommand, out: &mut dyn Write) -> Result<u8, BadInput> {
    match command {
        MeasureCommand::Snp(args) => run_snp(&args, out),
        MeasureCommand::Tdx(args) => run_tdx(&args, out),
    }
}

fn input_error(what: &str, e: &Error) -> BadInput {
    BadInput(format!("{what}: [{}] {}", e.kind(), e.message()))
}

/// Reads a whole file of at most `limit` bytes.
fn read_limited(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, BadInput> {
    let file = std::fs::File::open(path)
        .map_err(|e| BadInput(format!("cannot read {what} file {}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| BadInput(format!("cannot read {what} file {}: {e}", path.display())))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(BadInput(format!(
            "{what} file {} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Streams a file through `algorithm`; returns the digest and the size.
fn hash_file(
    path: &Path,
    what: &str,
    algorithm: &'static ring::digest::Algorithm,
) -> Result<(Vec<u8>, u64), BadInput> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| BadInput(format!("cannot read {what} file {}: {e}", path.display())))?;
    let mut ctx = ring::digest::Context::new(algorithm);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| BadInput(format!("cannot read {what} file {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        ctx.update(buf.get(..n).unwrap_or_default());
        size = size.saturating_add(n as u64);
    }
    Ok((ctx.finish().as_ref().to_vec(), size))
}

fn sha256_file(path: &Path, what: &str) -> Result<[u8; 32], BadInput> {
    let (digest, _) = hash_file(path, what, &ring::digest::SHA256)?;
    <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| BadInput("digest length".into()))
}

fn hex_arg<const N: usize>(text: &str, what: &str) -> Result<[u8; N], BadInput> {
    parse_hex_digest::<N>(text, what).map_err(|e| input_error(what, &e))
}

fn parse_features(text: &str) -> Result<u64, BadInput> {
    let t = text.trim();
    let hex = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    u64::from_str_radix(hex, 16)
        .map_err(|e| BadInput(format!("--guest-features {text:?} is not hex: {e}")))
}

/// Compares `actual` with an optional expected hex value; returns whether it matches.
fn compare(expected: Option<&str>, actual: &[u8], what: &str) -> Result<Option<bool>, BadInput> {
    let Some(expected) = expected else {
        return Ok(None);
    };
    let t = expected.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let bytes = hex::decode(t).map_err(|e| BadInput(format!("expected {what} is not hex: {e}")))?;
    Ok(Some(bytes == actual))
}

fn emit(out: &mut dyn Write, json: bool, report: &Map<String, Value>, human: &str) {
    if json {
        let text = serde_json::to_string_pretty(&Value::Object(report.clone()))
            .unwrap_or_else(|_| "{}".into());
        let _ = writeln!(out, "{text}");
    } else {
        let _ = writeln!(out, "{}", human.trim_end());
    }
}

fn run_snp(args: &SnpArgs, out: &mut dyn Write) -> Result<u8, BadInput> {
    let vmm = match args.vmm {
        VmmArg::Qemu => Vmm::Qemu,
        VmmArg::Ec2 => Vmm::Ec2,
        VmmArg::Gce => Vmm::Gce,
    };
    let has_kernel = args.kernel.is_some() || args.kernel_hash.is_some();
    if !has_kernel && (args.initrd.is_some() || args.initrd_hash.is_some() || args.append.is_some())
    {
        return Err(BadInput(
            "--initrd/--initrd-hash/--append need --kernel or --kernel-hash".into(),
        ));
    }
    // The kernel and initrd are hashed on their own threads while this one reads and measures
    // the firmware: the files dominate the time (tens of MiB of SHA-256).
    let (kernel_hash, initrd_hash, firmware_part) = std::thread::scope(|scope| {
        let kernel = scope.spawn(|| match (&args.kernel, &args.kernel_hash) {
            (Some(path), _) => sha256_file(path, "kernel").map(Some),
            (None, Some(hex)) => hex_arg::<32>(hex, "--kernel-hash").map(Some),
            (None, None) => Ok(None),
        });
        let initrd = scope.spawn(|| match (&args.initrd, &args.initrd_hash) {
            (Some(path), _) => sha256_file(path, "initrd").map(Some),
            (None, Some(hex)) => hex_arg::<32>(hex, "--initrd-hash").map(Some),
            (None, None) => Ok(None),
        });
        let firmware = load_snp_firmware(args);
        let join = |r: std::thread::Result<Result<Option<[u8; 32]>, BadInput>>| {
            r.unwrap_or_else(|_| Err(BadInput("hashing thread failed".into())))
        };
        (join(kernel.join()), join(initrd.join()), firmware)
    });
    let (kernel_hash, initrd_hash) = (kernel_hash?, initrd_hash?);
    let firmware_part = firmware_part?;
    let hashes = kernel_hash.map(|k| {
        KernelHashes::from_hashes(
            k,
            initrd_hash.unwrap_or_else(sha256_empty),
            args.append.as_deref(),
        )
    });
    let guest_features = parse_features(&args.guest_features)?;
    let vcpu_sig =
        snp::vcpu_signature(&args.vcpu_type).map_err(|e| input_error("--vcpu-type", &e))?;

    let mut report = Map::new();
    let ovmf = match &firmware_part.image {
        Some(image) => Some(Ovmf::parse(image).map_err(|e| input_error("firmware", &e))?),
        None => None,
    };
    // With the image, SNP starts from the OVMF hash computed once (the same value as measuring
    // the pages again; tested in the library) so that it can be reported without a second pass.
    let firmware = match (&ovmf, firmware_part.ovmf_hash) {
        (_, Some(ovmf_hash)) => Firmware::Seed {
            ovmf_hash,
            metadata: &firmware_part.metadata,
        },
        (Some(o), None) => Firmware::Image(o),
        (None, None) => return Err(BadInput("no firmware".into())),
    };

    let vcpus_needed = args.mode != SevMode::Sev;
    let vcpus = match (args.vcpus, vcpus_needed) {
        (Some(n), _) => n,
        (None, false) => 0,
        (None, true) => return Err(BadInput("--vcpus N is required".into())),
    };
    let result: Result<Vec<u8>, Error> = match (args.mode, firmware) {
        (SevMode::Snp, fw) => snp::snp_launch_digest(
            fw,
            &SnpParams {
                vcpus,
                vcpu_sig,
                vmm,
                guest_features,
                kernel_hashes: hashes,
            },
        )
        .map(|d| d.to_vec()),
        (SevMode::Seves, Firmware::Image(o)) => {
            snp::seves_launch_digest(o, vcpus, vcpu_sig, vmm, hashes.as_ref()).map(|d| d.to_vec())
        }
        (SevMode::Sev, Firmware::Image(o)) => {
            snp::sev_launch_digest(o, hashes.as_ref()).map(|d| d.to_vec())
        }
        (_, Firmware::Seed { .. }) => {
            return Err(BadInput("--ovmf-hash works with --mode snp only".into()))
        }
    };
    let digest = match result {
        Ok(d) => d,
        Err(e @ Error::KernelHashesUnsupported) => {
            report.insert(
                "error".into(),
                json!({"kind": e.kind(), "message": e.message()}),
            );
            let human = format!("REFUSED: {}", e.message());
            emit(out, args.json, &report, &human);
            return Ok(EXIT_REJECTED);
        }
        Err(e) => return Err(input_error("measurement", &e)),
    };

    let mode = match args.mode {
        SevMode::Snp => "snp",
        SevMode::Seves => "seves",
        SevMode::Sev => "sev",
    };
    report.insert("measurement".into(), json!(hex::encode(&digest)));
    report.insert("mode".into(), json!(mode));
    let mut human = format!(
        "{} launch digest\n  measurement     {}\n",
        mode_title(args.mode),
        hex::encode(&digest)
    );
    if args.mode != SevMode::Sev {
        report.insert("vcpus".into(), json!(vcpus));
        report.insert("vmm".into(), json!(vmm.name()));
        human.push_str(&format!(
            "  vcpus           {vcpus} ({}, vmm {})\n",
            args.vcpu_type,
            vmm.name()
        ));
        if vmm == Vmm::Qemu {
            report.insert("vcpu_type".into(), json!(args.vcpu_type));
        }
    }
    if args.mode == SevMode::Snp {
        report.insert(
            "guest_features".into(),
            json!(format!("{guest_features:#x}")),
        );
        human.push_str(&format!("  guest features  {guest_features:#x}\n"));
    }
    if let Some(hash) = firmware_part.ovmf_hash {
        let given = if firmware_part.image.is_some() {
            ""
        } else {
            " (given)"
        };
        report.insert("ovmf_hash".into(), json!(hex::encode(hash)));
        human.push_str(&format!("  ovmf hash       {}{given}\n", hex::encode(hash)));
    }
    if firmware_part.image.is_some() {
        report.insert("ovmf_metadata".into(), firmware_part.metadata.to_json());
    }
    if let Some(h) = &hashes {
        report.insert("kernel_sha256".into(), json!(hex::encode(h.kernel)));
        report.insert("initrd_sha256".into(), json!(hex::encode(h.initrd)));
        report.insert("cmdline_sha256".into(), json!(hex::encode(h.cmdline)));
        human.push_str(&format!(
            "  kernel sha256   {}\n  initrd sha256   {}\n  cmdline sha256  {} (command line + NUL)\n",
            hex::encode(h.kernel),
            hex::encode(h.initrd),
            hex::encode(h.cmdline)
        ));
    } else {
        human.push_str("  kernel          none (kernel, initrd and command line not measured)\n");
    }
    let verdict = compare(args.expected.as_deref(), &digest, "measurement")?;
    finish(out, args.json, report, human, &[("measurement", verdict)])
}

/// The firmware side of an SEV measurement: the image (when given), its SEV metadata, and the
/// OVMF hash (computed for SNP from the image, or given).
struct SnpFirmware {
    image: Option<Vec<u8>>,
    metadata: SevMetadata,
    ovmf_hash: Option<[u8; 48]>,
}

fn load_snp_firmware(args: &SnpArgs) -> Result<SnpFirmware, BadInput> {
    match (&args.ovmf, &args.ovmf_hash, &args.ovmf_metadata) {
        (Some(path), _, _) => {
            let image = read_limited(path, "firmware", MAX_FIRMWARE)?;
            let ovmf = Ovmf::parse(&image).map_err(|e| input_error("firmware", &e))?;
            let metadata = ovmf
                .sev_metadata()
                .map_err(|e| input_error("firmware", &e))?;
            let ovmf_hash = if args.mode == SevMode::Snp {
                Some(snp::ovmf_hash(&ovmf).map_err(|e| input_error("firmware", &e))?)
            } else {
                None
            };
            Ok(SnpFirmware {
                image: Some(image),
                metadata,
                ovmf_hash,
            })
        }
        (None, Some(hash), Some(meta_path)) => {
            if args.mode != SevMode::Snp {
                return Err(BadInput("--ovmf-hash works with --mode snp only".into()));
            }
            let text = read_limited(meta_path, "OVMF metadata", MAX_METADATA)?;
            Ok(SnpFirmware {
                image: None,
                metadata: SevMetadata::from_json(&text)
                    .map_err(|e| input_error("--ovmf-metadata", &e))?,
                ovmf_hash: Some(hex_arg::<48>(hash, "--ovmf-hash")?),
            })
        }
        _ => Err(BadInput(
            "give --ovmf, or --ovmf-hash with --ovmf-metadata".into(),
        )),
    }
}

fn mode_title(mode: SevMode) -> &'static str {
    match mode {
        SevMode::Snp => "SEV-SNP",
        SevMode::Seves => "SEV-ES",
        SevMode::Sev => "SEV",
    }
}

fn sha256_empty() -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b"").as_ref());
    out
}

/// Adds the comparison results, prints, and returns the exit code.
fn finish(
    out: &mut dyn Write,
    json: bool,
    mut report: Map<String, Value>,
    mut human: String,
    checks: &[(&str, Option<bool>)],
) -> Result<u8, BadInput> {
    let mut all = true;
    let mut matches = Map::new();
    for (name, verdict) in checks {
        if let Some(ok) = verdict {
            matches.insert((*name).into(), json!(ok));
            all &= ok;
            human.push_str(&format!(
                "  expected {name}: {}\n",
                if *ok { "MATCH" } else { "MISMATCH" }
            ));
        }
    }
    if !matches.is_empty() {
        report.insert("matches_expected".into(), Value::Object(matches));
    }
    emit(out, json, &report, &human);
    Ok(if all { EXIT_ACCEPTED } else { EXIT_REJECTED })
}

/// Parses a QEMU `-m` size: bytes, or a number with K, M, G or T (binary units).
fn parse_memory(text: &str) -> Result<u64, BadInput> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last() {
        Some('k' | 'K') => (t.get(..t.len().saturating_sub(1)), 10),
        Some('m' | 'M') => (t.get(..t.len().saturating_sub(1)), 20),
        Some('g' | 'G') => (t.get(..t.len().saturating_sub(1)), 30),
        Some('t' | 'T') => (t.get(..t.len().saturating_sub(1)), 40),
        _ => (Some(t), 0),
    };
    digits
        .and_then(|d| d.parse::<u64>().ok())
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| BadInput(format!("--memory {text:?} is not a size (e.g. 2G, 4096M)")))
}

fn run_tdx(args: &TdxArgs, out: &mut dyn Write) -> Result<u8, BadInput> {
    let order = PageOrder::from_name(&args.page_order)
        .ok_or_else(|| BadInput(format!("unknown --page-order {}", args.page_order)))?;
    let image = read_limited(&args.ovmf, "firmware", MAX_FIRMWARE)?;
    let ovmf = Ovmf::parse(&image).map_err(|e| input_error("firmware", &e))?;
    let mrtd = tdx::mrtd(&ovmf, order).map_err(|e| input_error("firmware", &e))?;
    let mut report = Map::new();
    report.insert("mrtd".into(), json!(hex::encode(mrtd)));
    report.insert("page_order".into(), json!(order.name()));
    let mut human = format!(
        "TDX measurements\n  mrtd            {}\n  page order      {}\n",
        hex::encode(mrtd),
        order.name()
    );
    if let Some(cfv) = tdx::cfv_sha384(&ovmf).map_err(|e| input_error("firmware", &e))? {
        report.insert("cfv_sha384".into(), json!(hex::encode(cfv)));
        human.push_str(&format!("  cfv sha384      {}\n", hex::encode(cfv)));
    }
    let initrd_size = match &args.initrd {
        Some(path) => Some(
            std::fs::metadata(path)
                .map_err(|e| BadInput(format!("cannot read initrd file {}: {e}", path.display())))?
                .len(),
        ),
        None => None,
    };
    let mut rtmr1_value = None;
    if let Some(path) = &args.kernel {
        let kernel = read_limited(path, "kernel", MAX_KERNEL)?;
        let hashed = if args.qemu_patched_header {
            let memory = parse_memory(args.memory.as_deref().unwrap_or_default())?;
            let size = initrd_size
                .map(|s| u32::try_from(s).map_err(|_| BadInput("initrd larger than 4 GiB".into())))
                .transpose()?;
            rtmr::qemu_patch_setup_header(
                &kernel,
                size,
                QemuLayout {
                    memory,
                    acpi_data_size: args.acpi_data_size,
                },
            )
            .map_err(|e| input_error("kernel", &e))?
        } else {
            kernel
        };
        let auth = authenticode::sha384(&hashed).map_err(|e| input_error("kernel", &e))?;
        let separator = if args.no_rtmr1_separator {
            rtmr::Separator::Rtmr0Only
        } else {
            rtmr::Separator::Rtmr1
        };
        let value = rtmr::replay(&rtmr::rtmr1_events(auth, separator));
        report.insert("rtmr1".into(), json!(hex::encode(value)));
        report.insert(
            "kernel_authenticode_sha384".into(),
            json!(hex::encode(auth)),
        );
        report.insert(
            "qemu_patched_header".into(),
            json!(args.qemu_patched_header),
        );
        human.push_str(&format!(
            "  rtmr1           {}\n  kernel authenticode sha384 {}{}\n",
            hex::encode(value),
            hex::encode(auth),
            if args.qemu_patched_header {
                " (after QEMU's setup-header patch)"
            } else {
                ""
            }
        ));
        rtmr1_value = Some(value);
    }
    let mut rtmr2_value = None;
    if args.kernel.is_some() || args.initrd.is_some() || args.append.is_some() {
        let cmdline = args.append.as_deref().unwrap_or_default();
        let mut events = vec![ring_sha384(&rtmr::cmdline_utf16(
            cmdline,
            args.initrd.is_some(),
        ))];
        if let Some(path) = &args.initrd {
            let (digest, _) = hash_file(path, "initrd", &ring::digest::SHA384)?;
            let digest = <[u8; 48]>::try_from(digest.as_slice())
                .map_err(|_| BadInput("digest length".into()))?;
            events.push(digest);
        }
        let value = rtmr::replay(&events);
        report.insert("rtmr2".into(), json!(hex::encode(value)));
        human.push_str(&format!("  rtmr2           {}\n", hex::encode(value)));
        rtmr2_value = Some(value);
    }
    let mut checks = vec![(
        "mrtd",
        compare(args.expected_mrtd.as_deref(), &mrtd, "MRTD")?,
    )];
    for (name, expected, value) in [
        ("rtmr1", &args.expected_rtmr1, rtmr1_value),
        ("rtmr2", &args.expected_rtmr2, rtmr2_value),
    ] {
        if let Some(expected) = expected {
            let value = value.ok_or_else(|| {
                BadInput(format!(
                    "--expected-{name} needs the files that determine {name}"
                ))
            })?;
            checks.push((name, compare(Some(expected), &value, name)?));
        }
    }
    finish(out, args.json, report, human, &checks)
}

fn ring_sha384(data: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA384, data).as_ref());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_qemu_writes_them() {
        assert_eq!(parse_memory("2G").unwrap(), 2 << 30);
        assert_eq!(parse_memory("4096M").unwrap(), 4 << 30);
        assert_eq!(parse_memory("1048576").unwrap(), 1 << 20);
        assert!(parse_memory("2X").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("99999999999T").is_err());
    }

    #[test]
    fn guest_features_parse_with_or_without_0x() {
        assert_eq!(parse_features("0x21").unwrap(), 0x21);
        assert_eq!(parse_features("1").unwrap(), 1);
        assert!(parse_features("0xzz").is_err());
    }
}
