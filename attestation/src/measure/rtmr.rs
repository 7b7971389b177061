//! RTMR1 / RTMR2 prediction for a TDX direct boot (`qemu -kernel … -initrd … -append …` with
//! OVMF), where they are determined by the files alone.
//!
//! Replay rule (as for the CCEL): `RTMR ← SHA-384(RTMR ‖ event digest)` from 48 zero bytes.
//!
//! **RTMR1** (PCR 2-5 mapped to RTMR1 by OVMF) events, in order:
//! 1. EV_EFI_BOOT_SERVICES_APPLICATION: the Authenticode SHA-384 of the kernel PE image
//!    ([`super::authenticode`]). OVMF up to edk2-stable202502 hashes the image **after** QEMU
//!    patched its setup header ([`qemu_patch_setup_header`]); later OVMF hashes the file as is.
//! 2. EV_EFI_ACTION "Calling EFI Application from Boot Option".
//! 3. EV_SEPARATOR (4 zero bytes): current edk2 (`TdTcg2Dxe` `OnReadyToBoot`) extends the
//!    ReadyToBoot separator into RTMR1; older OVMF extended it into RTMR0 only, so RTMR1 has
//!    no separator ([`Separator::Rtmr0Only`]; trustee's `CCEL_data_ovmf` is such a log).
//! 4. EV_EFI_ACTION "Exit Boot Services Invocation".
//! 5. EV_EFI_ACTION "Exit Boot Services Returned with Success".
//!
//! **RTMR2** (PCR 8-15) events, measured by the kernel's EFI stub (EV_EVENT_TAG
//! "LOADED_IMAGE::LoadOptions" and "Linux initrd"; kernels whose stub does not measure them
//! leave RTMR2 zero): the command line as OVMF passes it — each byte widened to UTF-16LE, plus
//! `" initrd=initrd"` when an initrd is given, plus a NUL character — then the initrd.
//!
//! Assumptions (documented in docs/measure.md): no boot loader (shim/grub) between OVMF and
//! the kernel, the default OVMF boot path (no boot-option variables changing the events),
//! and QEMU loading the initrd below 4 GiB with no setup_data added to the header. RTMR0
//! depends on QEMU's ACPI tables and is checked by event-log replay instead.

use super::authenticode;
use super::sha384;
use crate::error::{Error, Result};

/// Extends `events` into a register starting at zero.
pub fn replay(events: &[[u8; 48]]) -> [u8; 48] {
    let mut rtmr = [0u8; 48];
    for event in events {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA384);
        ctx.update(&rtmr);
        ctx.update(event);
        rtmr.copy_from_slice(ctx.finish().as_ref());
    }
    rtmr
}

/// Where the firmware extends its ReadyToBoot separator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Separator {
    /// Current edk2: into RTMR1 (after "Calling EFI Application from Boot Option").
    #[default]
    Rtmr1,
    /// Older OVMF: into RTMR0 only; RTMR1 has no separator.
    Rtmr0Only,
}

/// The RTMR1 event digests, starting with the kernel's Authenticode hash.
pub fn rtmr1_events(kernel_authenticode: [u8; 48], separator: Separator) -> Vec<[u8; 48]> {
    let mut events = vec![
        kernel_authenticode,
        sha384(b"Calling EFI Application from Boot Option"),
    ];
    if separator == Separator::Rtmr1 {
        events.push(sha384(&[0u8; 4]));
    }
    events.push(sha384(b"Exit Boot Services Invocation"));
    events.push(sha384(b"Exit Boot Services Returned with Success"));
    events
}

/// RTMR1 of a direct boot of `kernel` (the image as OVMF hashes it: patched or not).
pub fn rtmr1(kernel: &[u8], separator: Separator) -> Result<[u8; 48]> {
    Ok(replay(&rtmr1_events(
        authenticode::sha384(kernel)?,
        separator,
    )))
}

/// The command line as OVMF hands it to the kernel, UTF-16LE with its NUL.
pub fn cmdline_utf16(cmdline: &str, has_initrd: bool) -> Vec<u8> {
    let mut text = cmdline.as_bytes().to_vec();
    if has_initrd {
        text.extend_from_slice(b" initrd=initrd");
    }
    text.push(0);
    text.iter().flat_map(|b| [*b, 0]).collect()
}

/// The RTMR2 event digests: command line, then initrd.
pub fn rtmr2_events(cmdline: &str, initrd: Option<&[u8]>) -> Vec<[u8; 48]> {
    let mut events = vec![sha384(&cmdline_utf16(cmdline, initrd.is_some()))];
    if let Some(initrd) = initrd {
        events.push(sha384(initrd));
    }
    events
}

/// RTMR2 of a direct boot with this command line and initrd.
pub fn rtmr2(cmdline: &str, initrd: Option<&[u8]>) -> [u8; 48] {
    replay(&rtmr2_events(cmdline, initrd))
}

/// QEMU's guest memory layout inputs to the setup-header patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuLayout {
    /// Guest RAM in bytes (`-m`).
    pub memory: u64,
    /// Bytes QEMU reserves below the top of low memory for ACPI (0x28000 on current QEMU).
    pub acpi_data_size: u32,
}

impl QemuLayout {
    pub const DEFAULT_ACPI_DATA_SIZE: u32 = 0x28000;
}

fn patch(kd: &mut [u8], at: usize, bytes: &[u8]) -> Result<()> {
    kd.get_mut(at..at.saturating_add(bytes.len()))
        .ok_or_else(|| Error::PeImageMalformed {
            reason: format!("setup header field at {at:#x} lies outside the kernel"),
        })?
        .copy_from_slice(bytes);
    Ok(())
}

fn header_u16(kd: &[u8], at: usize) -> Result<u16> {
    super::le_u16(kd, at, "setup header").map_err(|_| Error::PeImageMalformed {
        reason: format!("setup header field at {at:#x} lies outside the kernel"),
    })
}

fn header_u32(kd: &[u8], at: usize) -> Result<u32> {
    super::le_u32(kd, at, "setup header").map_err(|_| Error::PeImageMalformed {
        reason: format!("setup header field at {at:#x} lies outside the kernel"),
    })
}

/// The kernel image after QEMU's `x86_load_linux` wrote its boot-protocol fields into the
/// setup header (type_of_loader, CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr and, with an initrd,
/// ramdisk_image / ramdisk_size), which is what OVMF ≤ edk2-stable202502 hashes for RTMR1.
///
/// Only boot protocol ≥ 2.02 with LOADED_HIGH (every bzImage since 2.6) is supported. The
/// initrd address follows QEMU: the top of low memory (q35: below 2 GiB or 2.75 GiB) less the
/// ACPI area, capped by the kernel's initrd_addr_max, unless the kernel sets
/// XLF_CAN_BE_LOADED_ABOVE_4G (bit 1 of xloadflags, as QEMU tests it).
pub fn qemu_patch_setup_header(
    kernel: &[u8],
    initrd_size: Option<u32>,
    layout: QemuLayout,
) -> Result<Vec<u8>> {
    let mut kd = kernel.to_vec();
    if kd.get(0x202..0x206) != Some(b"HdrS".as_slice()) {
        return Err(Error::PeImageMalformed {
            reason: "no Linux setup header (HdrS)".into(),
        });
    }
    let protocol = header_u16(&kd, 0x206)?;
    let loadflags = *kd.get(0x211).unwrap_or(&0);
    if protocol < 0x202 || loadflags & 0x01 == 0 {
        return Err(Error::MeasurementInputInvalid {
            reason: format!(
                "boot protocol {protocol:#x} without LOADED_HIGH is not supported (need ≥ 2.02)"
            ),
        });
    }
    let cmdline_addr: u32 = 0x20000;
    patch(&mut kd, 0x210, &[0xb0])?; // type_of_loader: QEMU
    patch(&mut kd, 0x211, &[loadflags | 0x80])?; // CAN_USE_HEAP
                                                 // cmd_line_ptr − real-mode base − 0x200, as QEMU computes it (fits u16).
    let heap_end: u16 = 0xfe00;
    patch(&mut kd, 0x224, &heap_end.to_le_bytes())?;
    patch(&mut kd, 0x228, &cmdline_addr.to_le_bytes())?;
    if let Some(size) = initrd_size {
        let mut initrd_max: u32 = if protocol >= 0x20c && header_u16(&kd, 0x236)? & 0x2 != 0 {
            u32::MAX
        } else if protocol >= 0x203 {
            match header_u32(&kd, 0x22c)? {
                0 => 0x37ff_ffff,
                max => max,
            }
        } else {
            0x37ff_ffff
        };
        let lowmem: u64 = if layout.memory >= 0xb000_0000 {
            0x8000_0000
        } else {
            0xb000_0000
        };
        let below_4g = u32::try_from(layout.memory.min(lowmem)).unwrap_or(u32::MAX);
        let top = below_4g.checked_sub(layout.acpi_data_size).ok_or_else(|| {
            Error::MeasurementInputInvalid {
                reason: "guest memory is smaller than the ACPI area".into(),
            }
        })?;
        if initrd_max >= top {
            initrd_max = top.saturating_sub(1);
        }
        if size >= initrd_max {
            return Err(Error::MeasurementInputInvalid {
                reason: format!("initrd of {size} bytes does not fit below {initrd_max:#x}"),
            });
        }
        let initrd_addr = initrd_max.saturating_sub(size) & !4095;
        patch(&mut kd, 0x218, &initrd_addr.to_le_bytes())?;
        patch(&mut kd, 0x21c, &size.to_le_bytes())?;
    }
    Ok(kd)
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
    fn replay_of_no_events_is_zero_and_one_event_is_hash_of_zero_and_digest() {
        assert_eq!(replay(&[]), [0u8; 48]);
        let e = sha384(b"x");
        let mut buf = vec![0u8; 48];
        buf.extend_from_slice(&e);
        assert_eq!(replay(&[e]), sha384(&buf));
    }

    #[test]
    fn rtmr1_of_a_real_ovmf_log_is_reproduced_from_its_kernel_digest() {
        // trustee's CCEL_data_ovmf (a real TDX guest booted by an older OVMF): its kernel event
        // digest, and RTMR1 as the vectors README lists it. That OVMF extended the ReadyToBoot
        // separator into RTMR0 only.
        let log = crate::test_vectors::read("eventlog/CCEL_data_ovmf_out.json");
        let log: serde_json::Value = serde_json::from_slice(&log).unwrap();
        let first_rtmr1 = log["uefi_event_logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["index"] == 2)
            .unwrap();
        let digest: [u8; 48] = hex::decode(first_rtmr1["digests"][0]["digest"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let expected = "775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6";
        assert_eq!(
            hex::encode(replay(&rtmr1_events(digest, Separator::Rtmr0Only))),
            expected
        );
        assert_ne!(
            hex::encode(replay(&rtmr1_events(digest, Separator::Rtmr1))),
            expected
        );
    }

    #[test]
    fn rtmr1_of_dstacks_ccel_is_reproduced_with_the_rtmr1_separator() {
        // dstack's ccel.bin (current OVMF): the first RTMR1 (imr_index 2) event of its parsed
        // snapshot is the kernel; RTMR1 as the vectors README lists it.
        let snap = String::from_utf8(crate::test_vectors::read(
            "eventlog/cc_eventlog__tests__parse_ccel.snap",
        ))
        .unwrap();
        let at = snap.find("imr_index: 2,").unwrap();
        let rest = &snap[at..];
        let start = rest.find("digests: [").unwrap();
        let quote = rest[start..].find('"').unwrap() + start + 1;
        let digest: [u8; 48] = hex::decode(&rest[quote..quote + 96])
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            hex::encode(replay(&rtmr1_events(digest, Separator::Rtmr1))),
            "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b282ea097cf4c9ed7a0db21b5c1ccd513e410d90e310836b26"
        );
    }

    #[test]
    fn cmdline_is_utf16le_with_initrd_suffix_and_nul() {
        let got = cmdline_utf16("ro", true);
        let expected: Vec<u8> = "ro initrd=initrd\0"
            .encode_utf16()
            .flat_map(|c| c.to_le_bytes())
            .collect();
        assert_eq!(got, expected);
        assert_eq!(cmdline_utf16("", false), vec![0, 0]);
    }

    #[test]
    fn rtmr2_changes_with_the_initrd_and_the_cmdline() {
        let a = rtmr2("console=ttyS0", Some(b"initrd"));
        assert_ne!(a, rtmr2("console=ttyS1", Some(b"initrd")));
        assert_ne!(a, rtmr2("console=ttyS0", Some(b"initrD")));
        assert_ne!(a, rtmr2("console=ttyS0", None));
    }

    #[test]
    fn qemu_patch_writes_only_setup_header_fields() {
        let Some(kernel) = test_kernel() else { return };
        let layout = QemuLayout {
            memory: 2 << 30,
            acpi_data_size: QemuLayout::DEFAULT_ACPI_DATA_SIZE,
        };
        let patched = qemu_patch_setup_header(&kernel, Some(1 << 20), layout).unwrap();
        assert_eq!(patched.len(), kernel.len());
        let changed: Vec<usize> = (0..kernel.len())
            .filter(|&i| kernel[i] != patched[i])
            .collect();
        assert!(
            changed.iter().all(|&i| (0x210..0x230).contains(&i)),
            "{changed:x?}"
        );
        assert_eq!(patched[0x210], 0xb0);
        assert_eq!(&patched[0x228..0x22c], &0x20000u32.to_le_bytes());
        assert_eq!(&patched[0x21c..0x220], &(1u32 << 20).to_le_bytes());
        let addr = u32::from_le_bytes(patched[0x218..0x21c].try_into().unwrap());
        assert_eq!(addr % 4096, 0);
        assert!(addr + (1 << 20) <= 0x8000_0000 - 0x28000);
        // The patched header changes the Authenticode hash, hence RTMR1.
        assert_ne!(
            rtmr1(&patched, Separator::Rtmr1).unwrap(),
            rtmr1(&kernel, Separator::Rtmr1).unwrap()
        );
    }

    #[test]
    fn qemu_patch_refuses_a_non_linux_image() {
        let layout = QemuLayout {
            memory: 1 << 30,
            acpi_data_size: QemuLayout::DEFAULT_ACPI_DATA_SIZE,
        };
        assert!(matches!(
            qemu_patch_setup_header(&[0u8; 0x1000], None, layout),
            Err(Error::PeImageMalformed { .. })
        ));
    }
}
