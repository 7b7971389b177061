//! TDX MRTD of a TD booted from a TDVF (OVMF) image.
//!
//! The TDX module extends MRTD (one running SHA-384, finalised at TDH.MR.FINALIZE) with a
//! 128-byte record per TDH.MEM.PAGE.ADD (`"MEM.PAGE.ADD"` ‖ zero padding to 16 ‖ GPA u64 LE ‖
//! zeros) and, per TDH.MR.EXTEND of a 256-byte chunk, a 128-byte record (`"MR.EXTEND"`, GPA)
//! followed by the chunk. The TDVF metadata lists the sections the VMM adds; those with the
//! MR.EXTEND attribute are also extended; PAGE.AUG sections are accepted later and not part of
//! MRTD.
//!
//! The order of ADDs and EXTENDs depends on the host stack: KVM ≥ 6.16 (QEMU ≥ 10.1) adds and
//! extends page by page ([`PageOrder::SinglePass`]); older TDX stacks add all pages of a
//! section and then extend them ([`PageOrder::TwoPass`]).

use super::ovmf::{Ovmf, TdvfSection};
use super::{sha384, PAGE_SIZE, PAGE_SIZE_U64};
use crate::error::{Error, Result};

/// The order in which the VMM issues TDH.MEM.PAGE.ADD and TDH.MR.EXTEND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageOrder {
    /// Per page: ADD, then EXTEND its 16 chunks (KVM ≥ 6.16 / QEMU ≥ 10.1).
    SinglePass,
    /// Per section: ADD every page, then EXTEND every page (older stacks).
    TwoPass,
}

impl PageOrder {
    /// `single` or `two-pass`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "single" | "single-pass" => Some(Self::SinglePass),
            "two-pass" => Some(Self::TwoPass),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SinglePass => "single",
            Self::TwoPass => "two-pass",
        }
    }
}

/// Size of one TDH.MR.EXTEND chunk.
const CHUNK: usize = 256;
/// Most memory the sections may declare in total (the image is mapped below 4 GiB).
const MAX_SECTION_MEMORY: u64 = 1 << 32;

struct Mrtd(ring::digest::Context);

impl Mrtd {
    fn record(&mut self, op: &[u8], gpa: u64) {
        let mut buf = [0u8; 128];
        if let Some(dst) = buf.get_mut(..op.len()) {
            dst.copy_from_slice(op);
        }
        if let Some(dst) = buf.get_mut(16..24) {
            dst.copy_from_slice(&gpa.to_le_bytes());
        }
        self.0.update(&buf);
    }

    fn page_add(&mut self, gpa: u64) {
        self.record(b"MEM.PAGE.ADD", gpa);
    }

    fn extend_page(&mut self, gpa: u64, page: &[u8; PAGE_SIZE]) {
        for (i, chunk) in page.chunks_exact(CHUNK).enumerate() {
            self.record(
                b"MR.EXTEND",
                gpa.saturating_add(i.saturating_mul(CHUNK) as u64),
            );
            self.0.update(chunk);
        }
    }
}

/// Content of page `index` of a section: its raw data, zero-filled past the raw size.
fn section_page(image: &[u8], section: &TdvfSection, index: u64) -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    let offset = index.saturating_mul(PAGE_SIZE as u64);
    let raw = u64::from(section.raw_data_size);
    if offset < raw {
        let len = raw.saturating_sub(offset).min(PAGE_SIZE_U64) as usize;
        let start = (u64::from(section.data_offset).saturating_add(offset)) as usize;
        if let (Some(src), Some(dst)) = (
            image.get(start..start.saturating_add(len)),
            page.get_mut(..len),
        ) {
            dst.copy_from_slice(src);
        }
    }
    page
}

/// The MRTD of a TD launched from this TDVF image, with the host's page order.
pub fn mrtd(ovmf: &Ovmf<'_>, order: PageOrder) -> Result<[u8; 48]> {
    let sections = ovmf.tdvf_sections()?;
    let image = ovmf.data();
    // Untrusted metadata: bound the work (the TD firmware lives below 4 GiB).
    let declared = sections
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(s.memory_data_size));
    if declared > MAX_SECTION_MEMORY {
        return Err(Error::FirmwareMalformed {
            reason: format!("TDVF sections declare {declared:#x} bytes (limit 4 GiB)"),
        });
    }
    let mut m = Mrtd(ring::digest::Context::new(&ring::digest::SHA384));
    for section in &sections {
        if section.attributes & TdvfSection::ATTR_PAGE_AUG != 0 {
            continue;
        }
        if section.memory_data_size > MAX_SECTION_MEMORY {
            return Err(Error::FirmwareMalformed {
                reason: format!(
                    "TDVF section at {:#x} declares {:#x} bytes",
                    section.memory_address, section.memory_data_size
                ),
            });
        }
        let pages = section.memory_data_size / PAGE_SIZE_U64;
        let extend = section.attributes & TdvfSection::ATTR_MR_EXTEND != 0;
        let gpa = |i: u64| {
            section
                .memory_address
                .saturating_add(i.saturating_mul(PAGE_SIZE as u64))
        };
        match order {
            PageOrder::SinglePass => {
                for i in 0..pages {
                    m.page_add(gpa(i));
                    if extend {
                        m.extend_page(gpa(i), &section_page(image, section, i));
                    }
                }
            }
            PageOrder::TwoPass => {
                for i in 0..pages {
                    m.page_add(gpa(i));
                }
                if extend {
                    for i in 0..pages {
                        m.extend_page(gpa(i), &section_page(image, section, i));
                    }
                }
            }
        }
    }
    let mut out = [0u8; 48];
    out.copy_from_slice(m.0.finish().as_ref());
    Ok(out)
}

/// SHA-384 of the configuration firmware volume (CFV, the UEFI variable store), the value
/// OVMF measures into RTMR0 and dstack-style documents publish.
pub fn cfv_sha384(ovmf: &Ovmf<'_>) -> Result<Option<[u8; 48]>> {
    let sections = ovmf.tdvf_sections()?;
    let Some(cfv) = sections
        .iter()
        .find(|s| s.section_type == TdvfSection::TYPE_CFV)
    else {
        return Ok(None);
    };
    let start = cfv.data_offset as usize;
    let data = ovmf
        .data()
        .get(start..start.saturating_add(cfv.raw_data_size as usize))
        .ok_or_else(|| Error::FirmwareMalformed {
            reason: "CFV section data lies outside the image".into(),
        })?;
    Ok(Some(sha384(data)))
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
    use crate::test_vectors;

    fn check(file: &str, single: &str, two: &str, cfv: &str) {
        let data = test_vectors::read(file);
        let ovmf = Ovmf::parse(&data).unwrap();
        assert_eq!(
            hex::encode(mrtd(&ovmf, PageOrder::SinglePass).unwrap()),
            single
        );
        assert_eq!(hex::encode(mrtd(&ovmf, PageOrder::TwoPass).unwrap()), two);
        assert_eq!(hex::encode(cfv_sha384(&ovmf).unwrap().unwrap()), cfv);
    }

    #[test]
    fn debian_bookworm_ovmf_mrtd_single_and_two_pass_match() {
        check(
            "measure/tdx/OVMF.fd.bookworm-2022.11-6+deb12u2",
            "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47",
            "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b33db3b32e6924cba830a724eed443f7e1",
            "f87302177b059d54a2cf0c5f13340dbabf5c9dd60dc3f996c68b776fbe4de959769443a3d8ef6538b97d7e151c8298e8",
        );
    }

    #[test]
    fn sid_inteltdx_ovmf_mrtd_single_and_two_pass_match() {
        check(
            "measure/firmware/OVMF.inteltdx.ms.fd.sid-2026.08+ds-2",
            "a7a1f751abc454f9cbab198ca8d2edb2821935df525c74182b5e776cb0929e8c59aefecce725b0d08a5e9d3d3183bd08",
            "b90b236113eb4c0d4df4ef590568c14e6028a3a31d7e8ac63dee9845df5008d3ebf82d4f5974e933798f65d7a279b9a9",
            "327d4a91229b3993a7f6f64740d94ff689d44b45edada6e255596d4c7aa287576a92fb1f5c350c287caf60670a5bad5a",
        );
    }

    #[test]
    fn truncated_firmware_whose_tdvf_descriptor_is_cut_off_is_malformed() {
        // The 4 KiB suffix keeps the footer table (with its TDX entry) but not the descriptor.
        let data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
        let ovmf = Ovmf::parse(&data).unwrap();
        assert!(matches!(
            mrtd(&ovmf, PageOrder::SinglePass),
            Err(Error::FirmwareMalformed { .. })
        ));
    }

    #[test]
    fn firmware_without_footer_has_no_tdx_metadata() {
        let data = vec![0u8; 3 * PAGE_SIZE];
        let ovmf = Ovmf::parse(&data).unwrap();
        assert!(matches!(
            mrtd(&ovmf, PageOrder::TwoPass),
            Err(Error::FirmwareEntryMissing { .. })
        ));
    }

    #[test]
    fn page_order_names_parse() {
        assert_eq!(PageOrder::from_name("single"), Some(PageOrder::SinglePass));
        assert_eq!(PageOrder::from_name("two-pass"), Some(PageOrder::TwoPass));
        assert_eq!(PageOrder::from_name("both"), None);
    }
}
