//! Authenticode image hash of a PE/COFF file (the digest UEFI measures for an EFI
//! application, e.g. a Linux kernel with an EFI stub booted directly by OVMF).
//!
//! Algorithm (Microsoft "Windows Authenticode Portable Executable Signature Format", as edk2's
//! `DxeTpm2MeasureBootLib` / `Tcg2MeasurePeImage` implements it): hash the headers except the
//! optional header's CheckSum and the certificate-table data directory entry; then each
//! section's raw data in PointerToRawData order (sections with no raw data skipped); then the
//! bytes after the last section, less the attribute-certificate table at the end of the file.
//! No crate implements this without pulling a whole PE parser and a crypto stack; this file
//! reads only the fields listed above, bounds-checked.

use crate::error::{Error, Result};

/// Largest kernel image accepted.
pub const MAX_IMAGE: usize = 512 * 1024 * 1024;
/// Most sections accepted (PE allows 96).
const MAX_SECTIONS: usize = 96;
/// Index of the certificate table among the data directories.
const SECURITY_DIR: u32 = 4;

fn bad(reason: impl Into<String>) -> Error {
    Error::PeImageMalformed {
        reason: reason.into(),
    }
}

fn u16_at(data: &[u8], at: usize, what: &str) -> Result<u16> {
    let b = data
        .get(at..at.saturating_add(2))
        .ok_or_else(|| bad(format!("{what} at {at:#x} lies outside the file")))?;
    let mut a = [0u8; 2];
    a.copy_from_slice(b);
    Ok(u16::from_le_bytes(a))
}

fn u32_at(data: &[u8], at: usize, what: &str) -> Result<u32> {
    let b = data
        .get(at..at.saturating_add(4))
        .ok_or_else(|| bad(format!("{what} at {at:#x} lies outside the file")))?;
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    Ok(u32::from_le_bytes(a))
}

/// The byte ranges of `image` that its Authenticode digest covers, in hashing order.
pub fn hashed_ranges(image: &[u8]) -> Result<Vec<std::ops::Range<usize>>> {
    if image.len() > MAX_IMAGE {
        return Err(bad(format!(
            "{} bytes exceed the limit of {MAX_IMAGE}",
            image.len()
        )));
    }
    if image.get(0..2) != Some(b"MZ".as_slice()) {
        return Err(bad("no MZ signature"));
    }
    let pe = u32_at(image, 0x3c, "e_lfanew")? as usize;
    if image.get(pe..pe.saturating_add(4)) != Some(b"PE\0\0".as_slice()) {
        return Err(bad("no PE signature"));
    }
    let coff = pe.saturating_add(4);
    let sections = u16_at(image, coff.saturating_add(2), "NumberOfSections")? as usize;
    let opt_size = u16_at(image, coff.saturating_add(16), "SizeOfOptionalHeader")? as usize;
    let opt = coff.saturating_add(20);
    let magic = u16_at(image, opt, "optional header magic")?;
    let (count_at, dirs_at) = match magic {
        0x10b => (opt.saturating_add(92), opt.saturating_add(96)),
        0x20b => (opt.saturating_add(108), opt.saturating_add(112)),
        other => return Err(bad(format!("unknown optional header magic {other:#x}"))),
    };
    let checksum_at = opt.saturating_add(64);
    let size_of_headers = u32_at(image, opt.saturating_add(60), "SizeOfHeaders")? as usize;
    let dir_count = u32_at(image, count_at, "NumberOfRvaAndSizes")?;
    if size_of_headers > image.len() || size_of_headers < checksum_at.saturating_add(4) {
        return Err(bad(format!(
            "SizeOfHeaders {size_of_headers:#x} is out of range"
        )));
    }
    let mut ranges = Vec::with_capacity(MAX_SECTIONS.saturating_add(4));
    ranges.push(0..checksum_at);
    let cert_size = if dir_count > SECURITY_DIR {
        let entry = dirs_at.saturating_add((SECURITY_DIR as usize).saturating_mul(8));
        if entry.saturating_add(8) > size_of_headers {
            return Err(bad("certificate table entry lies beyond the headers"));
        }
        ranges.push(checksum_at.saturating_add(4)..entry);
        ranges.push(entry.saturating_add(8)..size_of_headers);
        u32_at(image, entry.saturating_add(4), "certificate table size")? as usize
    } else {
        ranges.push(checksum_at.saturating_add(4)..size_of_headers);
        0
    };

    if sections > MAX_SECTIONS {
        return Err(bad(format!("{sections} sections")));
    }
    let table = opt.saturating_add(opt_size);
    let mut raw: Vec<(usize, usize)> = Vec::with_capacity(sections);
    for i in 0..sections {
        let header = table.saturating_add(i.saturating_mul(40));
        let size = u32_at(image, header.saturating_add(16), "SizeOfRawData")? as usize;
        let pointer = u32_at(image, header.saturating_add(20), "PointerToRawData")? as usize;
        if size == 0 {
            continue;
        }
        if pointer
            .checked_add(size)
            .is_none_or(|end| end > image.len())
        {
            return Err(bad(format!("section {i} raw data lies outside the file")));
        }
        raw.push((pointer, size));
    }
    raw.sort_by_key(|(pointer, _)| *pointer);
    let mut sum = size_of_headers;
    for (pointer, size) in raw {
        ranges.push(pointer..pointer.saturating_add(size));
        sum = sum.saturating_add(size);
    }
    // Trailing data (edk2: hashed when the file is longer than everything hashed so far plus
    // the certificate table).
    if image.len() > sum.saturating_add(cert_size) {
        ranges.push(sum..image.len().saturating_sub(cert_size));
    }
    Ok(ranges)
}

/// The Authenticode digest of `image` with `algorithm` (SHA-256 for signatures, SHA-384 for
/// TDX RTMR1).
pub fn digest(image: &[u8], algorithm: &'static ring::digest::Algorithm) -> Result<Vec<u8>> {
    let mut ctx = ring::digest::Context::new(algorithm);
    for range in hashed_ranges(image)? {
        let start = range.start;
        let part = image
            .get(range)
            .ok_or_else(|| bad(format!("hashed range at {start:#x} lies outside the file")))?;
        ctx.update(part);
    }
    Ok(ctx.finish().as_ref().to_vec())
}

/// The Authenticode SHA-384 digest (RTMR1's kernel event).
pub fn sha384(image: &[u8]) -> Result<[u8; 48]> {
    let d = digest(image, &ring::digest::SHA384)?;
    <[u8; 48]>::try_from(d.as_slice()).map_err(|_| bad("digest length"))
}

/// The Authenticode SHA-256 digest (what Secure Boot signatures sign).
pub fn sha256(image: &[u8]) -> Result<[u8; 32]> {
    let d = digest(image, &ring::digest::SHA256)?;
    <[u8; 32]>::try_from(d.as_slice()).map_err(|_| bad("digest length"))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::measure::test_kernel;

    #[test]
    fn debian_kernel_sha256_equals_the_digest_debian_signed() {
        // Oracle: the SpcIndirectDataContent digest inside Debian's own Secure Boot signature
        // of vmlinuz-6.1.0-56-amd64 (`osslsigncode verify` prints it as "Current message
        // digest"); our hasher never reads the signature.
        let Some(kernel) = test_kernel() else { return };
        assert_eq!(
            hex::encode(sha256(&kernel).unwrap()),
            "6b1bf35c3bee9918250f593a6fff889c75c1e239cd2fe9e5bb0cd3de9dcb8e51"
        );
    }

    #[test]
    fn debian_kernel_sha384_equals_osslsigncode() {
        // Oracle: osslsigncode (Debian package, an independent C implementation) when
        // installed: `extract-data -h sha384` writes the SpcIndirectDataContent with the
        // file's SHA-384 Authenticode digest, which must contain ours. Without osslsigncode the
        // value recorded from it on 2026-11-26 is checked.
        let Some(kernel) = test_kernel() else { return };
        let ours = sha384(&kernel).unwrap();
        assert_eq!(hex::encode(ours), DEBIAN_KERNEL_SHA384);
        let dir = std::env::temp_dir().join(format!("cocoon-authenticode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("data.der");
        let status = std::process::Command::new("osslsigncode")
            .args(["extract-data", "-h", "sha384", "-in"])
            .arg(crate::measure::test_kernel_path())
            .arg("-out")
            .arg(&out)
            .output();
        match status {
            Ok(o) if o.status.success() => {
                let der = std::fs::read(&out).unwrap();
                assert!(
                    der.windows(48).any(|w| w == ours),
                    "osslsigncode's SHA-384 digest differs from ours"
                );
            }
            _ => eprintln!("osslsigncode not available: checked the recorded value only"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    const DEBIAN_KERNEL_SHA384: &str =
        "e494e71ba795e8fc3edc1b3cab678c8c8782a6efe14d2d5a25155dc948b53f7d1dab088ff7005b7e6f9b0534738660e2";

    #[test]
    fn non_pe_input_is_malformed() {
        assert!(matches!(
            sha384(b"not a PE file"),
            Err(Error::PeImageMalformed { .. })
        ));
        let mut mz = vec![0u8; 256];
        mz[0] = b'M';
        mz[1] = b'Z';
        mz[0x3c] = 0xf0;
        assert!(matches!(sha384(&mz), Err(Error::PeImageMalformed { .. })));
    }

    #[test]
    fn truncated_kernels_never_panic() {
        let Some(kernel) = test_kernel() else { return };
        for cut in [0x40, 0x100, 0x200, 0x400, 0x1000, 0x10000] {
            assert!(sha384(&kernel[..cut]).is_err());
        }
    }
}
