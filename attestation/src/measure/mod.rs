//! Measured boot: recomputes, from public image files, the launch measurements the hardware
//! reports (issue #6 items 1 and 2).
//!
//! - [`ovmf`]: the OVMF footer GUID table, the SEV metadata sections and the TDVF metadata.
//! - [`snp`]: the SEV-SNP launch digest (and the SEV / SEV-ES launch digests), byte-exact with
//!   `sev-snp-measure` (virtee, Python), including its EC2 and GCE register conventions.
//! - [`tdx`]: the TDX MRTD from the unified OVMF (TDH.MEM.PAGE.ADD / TDH.MR.EXTEND), with the
//!   page order of the host's KVM as a parameter.
//! - [`authenticode`] and [`rtmr`]: the RTMR1 / RTMR2 values of a TDX direct boot (kernel PE
//!   Authenticode hash, command line and initrd), with the assumptions written next to them.
//!
//! Everything here is pure computation over byte slices: no file, clock or environment access.
//! Inputs are untrusted; malformed firmware and kernels are errors, never panics.

pub mod authenticode;
pub mod ovmf;
pub mod rtmr;
pub mod snp;
pub mod tdx;

use crate::error::{Error, Result};

/// Size of a guest page.
pub const PAGE_SIZE: usize = 4096;
/// [`PAGE_SIZE`] as u64.
pub const PAGE_SIZE_U64: u64 = 4096;

/// SHA-384 of `data` (ring: the assembly implementation).
pub(crate) fn sha384(data: &[u8]) -> [u8; 48] {
    let digest = ring::digest::digest(&ring::digest::SHA384, data);
    let mut out = [0u8; 48];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Little-endian u16 at `offset`, or a firmware error naming `what`.
pub(crate) fn le_u16(data: &[u8], offset: usize, what: &str) -> Result<u16> {
    let bytes = field(data, offset, 2, what)?;
    let mut b = [0u8; 2];
    b.copy_from_slice(bytes);
    Ok(u16::from_le_bytes(b))
}

/// Little-endian u32 at `offset`.
pub(crate) fn le_u32(data: &[u8], offset: usize, what: &str) -> Result<u32> {
    let bytes = field(data, offset, 4, what)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    Ok(u32::from_le_bytes(b))
}

/// Little-endian u64 at `offset`.
pub(crate) fn le_u64(data: &[u8], offset: usize, what: &str) -> Result<u64> {
    let bytes = field(data, offset, 8, what)?;
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Ok(u64::from_le_bytes(b))
}

/// `len` bytes at `offset`, or [`Error::FirmwareMalformed`].
pub(crate) fn field<'a>(data: &'a [u8], offset: usize, len: usize, what: &str) -> Result<&'a [u8]> {
    offset
        .checked_add(len)
        .and_then(|end| data.get(offset..end))
        .ok_or_else(|| Error::FirmwareMalformed {
            reason: format!("{what} at offset {offset:#x} (+{len}) lies outside the image"),
        })
}

/// Parses a hex digest of exactly `N` bytes (optional `0x` prefix, surrounding whitespace).
pub fn parse_hex_digest<const N: usize>(text: &str, what: &str) -> Result<[u8; N]> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let bytes = hex::decode(t).map_err(|e| Error::MeasurementInputInvalid {
        reason: format!("{what} is not hex: {e}"),
    })?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| Error::MeasurementInputInvalid {
        reason: format!("{what} has {} bytes, expected {N}", bytes.len()),
    })
}

/// Path of the Debian kernel `scripts/fetch-kernel` puts in `.cache/kernel/` (tests only).
#[cfg(test)]
pub(crate) fn test_kernel_path() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/kernel/vmlinuz")
}

/// The Debian kernel, or `None` (with the reason printed) when `scripts/fetch-kernel` has not
/// run; under `COCOON_REQUIRE_KERNEL=1` (scripts/test) its absence fails the test.
#[cfg(test)]
#[allow(clippy::panic)]
pub(crate) fn test_kernel() -> Option<Vec<u8>> {
    let path = test_kernel_path();
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            if std::env::var("COCOON_REQUIRE_KERNEL").as_deref() == Ok("1") {
                panic!(
                    "COCOON_REQUIRE_KERNEL=1 and {}: {e} (run scripts/fetch-kernel)",
                    path.display()
                );
            }
            eprintln!(
                "skipped: no Debian kernel at {} ({e}); run scripts/fetch-kernel",
                path.display()
            );
            None
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod robustness {
    use super::ovmf::Ovmf;
    use super::snp::{self, Firmware, KernelHashes, SnpParams, Vmm};
    use super::tdx::{self, PageOrder};
    use crate::test_vectors;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn mutated_snp_firmware_never_panics(
            which in 0usize..2,
            edits in proptest::collection::vec((0usize..1024, any::<u8>()), 1..8),
            kernel in any::<bool>(),
        ) {
            let name = ["measure/snp/ovmf_AmdSev_suffix.bin", "measure/snp/ovmf_OvmfX64_suffix.bin"][which];
            let mut b = test_vectors::read(name);
            let len = b.len();
            // The footer table and SEV metadata live in the last KiB.
            for (pos, val) in edits {
                b[len - 1 - pos] = val;
            }
            if let Ok(ovmf) = Ovmf::parse(&b) {
                let params = SnpParams {
                    vcpus: 2,
                    vcpu_sig: 0x800f12,
                    vmm: Vmm::Qemu,
                    guest_features: 1,
                    kernel_hashes: kernel.then(|| KernelHashes::from_files(b"k", None, None)),
                };
                let _ = snp::snp_launch_digest(Firmware::Image(&ovmf), &params);
                let _ = snp::seves_launch_digest(&ovmf, 1, 0, Vmm::Ec2, None);
                let _ = ovmf.tdvf_sections();
            }
        }

        #[test]
        fn random_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
            if let Ok(ovmf) = Ovmf::parse(&bytes) {
                let _ = ovmf.tdvf_sections();
            }
            let _ = super::authenticode::sha384(&bytes);
        }
    }

    #[test]
    fn tdvf_section_declaring_more_than_4_gib_is_malformed() {
        let mut b = test_vectors::read("measure/tdx/OVMF.fd.bookworm-2022.11-6+deb12u2");
        let ovmf = Ovmf::parse(&b).unwrap();
        let first = ovmf.tdvf_sections().unwrap()[0];
        // Find the first section entry (its MemoryAddress) and inflate its MemoryDataSize.
        let needle = [
            first.data_offset.to_le_bytes(),
            first.raw_data_size.to_le_bytes(),
        ]
        .concat();
        let at = b.windows(8).rposition(|w| w == needle.as_slice()).unwrap();
        b[at + 16..at + 24].copy_from_slice(&(8u64 << 30).to_le_bytes());
        let ovmf = Ovmf::parse(&b).unwrap();
        assert!(matches!(
            tdx::mrtd(&ovmf, PageOrder::SinglePass),
            Err(crate::Error::FirmwareMalformed { .. })
        ));
    }
}
