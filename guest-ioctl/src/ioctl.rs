//! The ioctl calls and their kernel ABI structures.
#![allow(unsafe_code)]

use std::fs::File;
use std::mem::size_of;

use crate::GuestIoctlError;

/// Largest certificate table the sev-guest driver hands out (`SEV_FW_BLOB_MAX_SIZE` in
/// drivers/virt/coco/sev-guest/sev-guest.c: 4 pages).
pub const SEV_FW_BLOB_MAX_SIZE: usize = 0x4000;

/// Size of an SEV-SNP attestation report (ABI spec, Table "ATTESTATION_REPORT Structure").
pub const SNP_REPORT_LEN: usize = 0x4A0;

/// Size of a TDREPORT (`TDX_REPORT_LEN` in include/uapi/linux/tdx-guest.h).
pub const TDX_REPORT_LEN: usize = 1024;

/// The guest message version the sev-guest driver expects in `msg_version`.
const SNP_MSG_VERSION: u8 = 1;

/// `SNP_GUEST_VMM_ERR_INVALID_LEN`: the certificate buffer is too small; the driver wrote the
/// needed length back into `certs_len`.
const SNP_GUEST_VMM_ERR_INVALID_LEN: u32 = 1;

/// Offset of the report in the firmware's MSG_REPORT_RSP (ABI spec, Table "MSG_REPORT_RSP
/// Message Structure": STATUS u32, REPORT_SIZE u32, 24 reserved bytes, REPORT).
const REPORT_RSP_HEADER: usize = 0x20;

// ----------------------------------------------------------------- include/uapi/linux/sev-guest.h

/// `struct snp_report_req`.
#[repr(C)]
struct SnpReportReq {
    user_data: [u8; 64],
    vmpl: u32,
    rsvd: [u8; 28],
}

/// `struct snp_ext_report_req`.
#[repr(C)]
struct SnpExtReportReq {
    data: SnpReportReq,
    certs_address: u64,
    certs_len: u32,
    /// The C struct's implicit tail padding, explicit so every byte handed to the kernel
    /// is initialised.
    padding: [u8; 4],
}

/// `struct snp_report_resp`.
#[repr(C)]
struct SnpReportResp {
    data: [u8; 4000],
}

/// `struct snp_guest_request_ioctl` (the union of `exitinfo2` and `{fw_error, vmm_error}` is
/// read as the u64 it overlays).
#[repr(C)]
struct SnpGuestRequestIoctl {
    msg_version: u8,
    /// Implicit padding in C, explicit here (see `SnpExtReportReq::padding`).
    padding: [u8; 7],
    req_data: u64,
    resp_data: u64,
    exitinfo2: u64,
}

const _: () = assert!(size_of::<SnpReportReq>() == 96);
const _: () = assert!(size_of::<SnpExtReportReq>() == 112);
const _: () = assert!(size_of::<SnpReportResp>() == 4000);
const _: () = assert!(size_of::<SnpGuestRequestIoctl>() == 32);

// ----------------------------------------------------------------- include/uapi/linux/tdx-guest.h

/// `struct tdx_report_req`.
#[repr(C)]
struct TdxReportReq {
    reportdata: [u8; 64],
    tdreport: [u8; TDX_REPORT_LEN],
}

const _: () = assert!(size_of::<TdxReportReq>() == 1088);

// ----------------------------------------------------------------- request numbers

/// `_IOWR(type, nr, size)` of include/uapi/asm-generic/ioctl.h: direction (read|write = 3)
/// in bits 31..30, size in bits 29..16, type in 15..8, number in 7..0.
#[allow(clippy::arithmetic_side_effects)] // const-evaluated: an overflow fails the build
const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    const IOC_READ_WRITE: u32 = 3;
    assert!(size < (1 << 14), "_IOC_SIZEBITS is 14");
    (IOC_READ_WRITE << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | (nr as u32)
}

/// `SNP_GET_EXT_REPORT = _IOWR('S', 0x2, struct snp_guest_request_ioctl)`.
pub(crate) const SNP_GET_EXT_REPORT: u32 = iowr(b'S', 0x2, size_of::<SnpGuestRequestIoctl>());

/// `TDX_CMD_GET_REPORT0 = _IOWR('T', 1, struct tdx_report_req)`.
pub(crate) const TDX_CMD_GET_REPORT0: u32 = iowr(b'T', 1, size_of::<TdxReportReq>());

// ----------------------------------------------------------------- calls

/// An SEV-SNP report with the host's certificate table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevExtReport {
    /// The attestation report (`SNP_REPORT_LEN` bytes on current firmware).
    pub report: Vec<u8>,
    /// The raw certificate table (GUID/offset/length entries, then the certificates), exactly
    /// as the driver copied it; empty when the host installed none.
    pub certs: Vec<u8>,
}

/// `SNP_GET_EXT_REPORT` on an open `/dev/sev-guest`: a report carrying `user_data` as
/// REPORT_DATA at privilege level `vmpl`, with the host's certificate table.
pub fn sev_get_ext_report(
    dev: &File,
    user_data: &[u8; 64],
    vmpl: u32,
) -> Result<SevExtReport, GuestIoctlError> {
    // Start with the largest buffer the driver accepts, so a second round is only needed if
    // a driver reports a smaller need than we gave (never) or the table changed in between.
    let mut certs = vec![0u8; SEV_FW_BLOB_MAX_SIZE];
    for _ in 0..2 {
        let mut req = SnpExtReportReq {
            data: SnpReportReq {
                user_data: *user_data,
                vmpl,
                rsvd: [0; 28],
            },
            certs_address: certs.as_mut_ptr() as u64,
            certs_len: u32::try_from(certs.len()).unwrap_or(u32::MAX),
            padding: [0; 4],
        };
        let mut resp = SnpReportResp { data: [0; 4000] };
        let mut guest_req = SnpGuestRequestIoctl {
            msg_version: SNP_MSG_VERSION,
            padding: [0; 7],
            req_data: std::ptr::addr_of_mut!(req) as u64,
            resp_data: std::ptr::addr_of_mut!(resp) as u64,
            exitinfo2: 0,
        };
        match call(dev, SNP_GET_EXT_REPORT, &mut guest_req) {
            Ok(()) => {
                let report = report_from_response(&resp.data)?;
                return Ok(SevExtReport {
                    report,
                    certs: trim_unused(certs),
                });
            }
            Err(os) => {
                let fw_error = (guest_req.exitinfo2 & 0xffff_ffff) as u32;
                let vmm_error = (guest_req.exitinfo2 >> 32) as u32;
                if vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN {
                    let needed = usize::try_from(req.certs_len).unwrap_or(usize::MAX);
                    if needed > SEV_FW_BLOB_MAX_SIZE {
                        return Err(GuestIoctlError::SevCertificatesTooLarge {
                            needed,
                            limit: SEV_FW_BLOB_MAX_SIZE,
                        });
                    }
                    certs = vec![0u8; needed];
                    continue;
                }
                if guest_req.exitinfo2 == 0 {
                    return Err(GuestIoctlError::Os(os));
                }
                return Err(GuestIoctlError::SevFirmware {
                    fw_error,
                    vmm_error,
                    os,
                });
            }
        }
    }
    Err(GuestIoctlError::BadResponse {
        reason: "the certificate table size kept changing".into(),
    })
}

/// `TDX_CMD_GET_REPORT0` on an open `/dev/tdx_guest`: a TDREPORT carrying `report_data`.
pub fn tdx_get_report0(
    dev: &File,
    report_data: &[u8; 64],
) -> Result<[u8; TDX_REPORT_LEN], GuestIoctlError> {
    let mut req = TdxReportReq {
        reportdata: *report_data,
        tdreport: [0; TDX_REPORT_LEN],
    };
    call(dev, TDX_CMD_GET_REPORT0, &mut req).map_err(GuestIoctlError::Os)?;
    Ok(req.tdreport)
}

/// The report inside a MSG_REPORT_RSP.
fn report_from_response(data: &[u8]) -> Result<Vec<u8>, GuestIoctlError> {
    let word = |at: usize| -> Result<u32, GuestIoctlError> {
        data.get(at..at.saturating_add(4))
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| GuestIoctlError::BadResponse {
                reason: "response shorter than its header".into(),
            })
    };
    let status = word(0)?;
    if status != 0 {
        return Err(GuestIoctlError::BadResponse {
            reason: format!("firmware status {status:#x}"),
        });
    }
    let size = usize::try_from(word(4)?).unwrap_or(usize::MAX);
    data.get(REPORT_RSP_HEADER..REPORT_RSP_HEADER.saturating_add(size))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| GuestIoctlError::BadResponse {
            reason: format!("report size {size} exceeds the response"),
        })
}

/// An all-zero buffer means the host installed no certificates.
fn trim_unused(certs: Vec<u8>) -> Vec<u8> {
    if certs.iter().all(|&b| b == 0) {
        Vec::new()
    } else {
        certs
    }
}

#[cfg(target_os = "linux")]
fn call<T>(dev: &File, request: u32, arg: &mut T) -> Result<(), std::io::Error> {
    use std::os::fd::AsRawFd;
    // SAFETY: `dev` is an open file, so the descriptor is valid for the call. `request` is one
    // of the request numbers above, each computed with `_IOWR` over exactly the `#[repr(C)]`
    // type `T` passed here (sizes asserted against the kernel headers at compile time), so the
    // driver reads and writes within `*arg`. Pointers inside `*arg` (req_data, resp_data,
    // certs_address) point to buffers that live on the caller's stack frame or heap until this
    // call returns, with the sizes the driver expects (`certs_len` is the buffer's length).
    let ret = unsafe {
        libc::ioctl(
            dev.as_raw_fd(),
            request as libc::Ioctl,
            std::ptr::from_mut(arg),
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn call<T>(_dev: &File, _request: u32, _arg: &mut T) -> Result<(), std::io::Error> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    //! The calls need a TEE guest (none here); these tests check what can be checked
    //! without one: the ABI layout and the request numbers.
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn sev_guest_request_numbers_match_the_kernel_header() {
        // _IOWR('S', 0x2, struct snp_guest_request_ioctl): dir 3 << 30 = 0xC000_0000,
        // size 32 = 0x20 << 16 = 0x0020_0000, type 'S' = 0x53 << 8 = 0x5300, nr 2.
        assert_eq!(SNP_GET_EXT_REPORT, 0xC020_5302);
    }

    #[test]
    fn tdx_guest_request_numbers_match_the_kernel_header() {
        // _IOWR('T', 1, struct tdx_report_req): dir 0xC000_0000, size 1088 = 0x440 << 16 =
        // 0x0440_0000, type 'T' = 0x54 << 8 = 0x5400, nr 1.
        assert_eq!(TDX_CMD_GET_REPORT0, 0xC440_5401);
    }

    #[test]
    fn sev_guest_structs_have_the_kernel_layout() {
        assert_eq!(size_of::<SnpReportReq>(), 96);
        assert_eq!(offset_of!(SnpReportReq, vmpl), 64);
        assert_eq!(offset_of!(SnpReportReq, rsvd), 68);
        assert_eq!(size_of::<SnpExtReportReq>(), 112);
        assert_eq!(offset_of!(SnpExtReportReq, certs_address), 96);
        assert_eq!(offset_of!(SnpExtReportReq, certs_len), 104);
        assert_eq!(size_of::<SnpGuestRequestIoctl>(), 32);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, req_data), 8);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, resp_data), 16);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, exitinfo2), 24);
    }

    #[test]
    fn tdx_guest_struct_has_the_kernel_layout() {
        assert_eq!(size_of::<TdxReportReq>(), 1088);
        assert_eq!(offset_of!(TdxReportReq, tdreport), 64);
    }

    #[test]
    fn report_is_taken_from_a_successful_response() {
        let mut data = [0u8; 4000];
        data[4..8].copy_from_slice(&(SNP_REPORT_LEN as u32).to_le_bytes());
        data[0x20] = 0xAB;
        let report = report_from_response(&data).unwrap();
        assert_eq!(report.len(), SNP_REPORT_LEN);
        assert_eq!(report[0], 0xAB);
    }

    #[test]
    fn failed_or_oversized_responses_are_rejected() {
        let mut data = [0u8; 4000];
        data[0] = 0x16; // INVALID_PARAM
        assert!(matches!(
            report_from_response(&data),
            Err(GuestIoctlError::BadResponse { .. })
        ));
        let mut data = [0u8; 4000];
        data[4..8].copy_from_slice(&4000u32.to_le_bytes());
        assert!(matches!(
            report_from_response(&data),
            Err(GuestIoctlError::BadResponse { .. })
        ));
    }

    #[test]
    fn calls_on_a_regular_file_fail_with_the_os_error() {
        // Not a TEE here: the ioctl on a non-device file fails with ENOTTY, which must come
        // back as an error, not as a report of zeros.
        let f = File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
        assert!(matches!(
            tdx_get_report0(&f, &[0; 64]),
            Err(GuestIoctlError::Os(_))
        ));
        assert!(matches!(
            sev_get_ext_report(&f, &[0; 64], 0),
            Err(GuestIoctlError::Os(_))
        ));
    }
}
