//! OVMF firmware images: the footer GUID table, SEV metadata and TDVF metadata.
//!
//! Layout (edk2 `OvmfPkg/ResetVector`): the image ends with the reset vector; 32 bytes before
//! the end sits the footer entry (`u16 size ‖ GUID 96b582de-…`), preceded by the table's other
//! entries, each `data ‖ u16 size ‖ GUID` read backwards from the footer. The SEV metadata entry
//! holds the offset (from the end of the image) of an `ASEV` header followed by its sections;
//! the TDX metadata entry the offset of a `TDVF` descriptor. Parsing follows sev-snp-measure's
//! `ovmf.py` (an image without a footer has an empty table) and the TDVF spec.

use super::{field, le_u16, le_u32, le_u64, PAGE_SIZE_U64};
use crate::error::{Error, Result};

/// Footer GUID of the OVMF table.
pub const TABLE_FOOTER_GUID: &str = "96b582de-1fb2-45f7-baea-a366c55a082d";
/// Entry: GPA (u32) and size of the SEV hashes table (kernel, initrd, cmdline).
pub const SEV_HASH_TABLE_RV_GUID: &str = "7255371f-3a3b-4b04-927b-1da6efa8d454";
/// Entry: the SEV-ES AP reset EIP (u32).
pub const SEV_ES_RESET_BLOCK_GUID: &str = "00f771de-1a7e-4fcb-890e-68c77e2fb44e";
/// Entry: offset from the end of the image of the SEV metadata (`ASEV`).
pub const SEV_META_DATA_GUID: &str = "dc886566-984a-4798-a75e-5585a7bf67cc";
/// Entry: offset from the end of the image of the TDVF metadata (`TDVF`).
pub const TDX_META_DATA_GUID: &str = "e47a6535-984a-4798-865e-4685a7bf8ec2";

/// Largest firmware image accepted: it is mapped below 4 GiB.
pub const MAX_IMAGE: usize = 64 * 1024 * 1024;
/// Most metadata sections accepted (real images have fewer than 16).
const MAX_SECTIONS: u32 = 256;
/// Size of a footer table entry header: u16 size ‖ 16-byte GUID.
const ENTRY_HEADER: usize = 18;

/// Formats a little-endian (EFI) GUID the way Python's `uuid.UUID(bytes_le=…)` does.
pub fn guid_string(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// Bytes of a GUID string in EFI (little-endian) order; `None` if it is not a GUID.
pub fn guid_bytes(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let raw = hex::decode(hex).ok()?;
    let raw: [u8; 16] = raw.try_into().ok()?;
    let mut b = raw;
    b[0] = raw[3];
    b[1] = raw[2];
    b[2] = raw[1];
    b[3] = raw[0];
    b[4] = raw[5];
    b[5] = raw[4];
    b[6] = raw[7];
    b[7] = raw[6];
    Some(b)
}

/// Types of the sections of the OVMF SEV metadata (edk2 `OvmfSevMetadata.asm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SevSectionType {
    /// Memory pre-validated by the firmware: measured as zero pages (unmeasured on GCE).
    SnpSecMem,
    /// The SNP secrets page.
    SnpSecrets,
    /// The CPUID page (filled by the PSP, measured as a CPUID page).
    Cpuid,
    /// The SVSM calling-area page (zero page).
    SvsmCaa,
    /// The kernel-hashes page (SEV hashes table at its GPA).
    SnpKernelHashes,
}

impl SevSectionType {
    /// From the metadata's numeric type.
    pub fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::SnpSecMem),
            2 => Some(Self::SnpSecrets),
            3 => Some(Self::Cpuid),
            4 => Some(Self::SvsmCaa),
            0x10 => Some(Self::SnpKernelHashes),
            _ => None,
        }
    }

    /// The metadata's numeric type.
    pub fn as_u32(self) -> u32 {
        match self {
            Self::SnpSecMem => 1,
            Self::SnpSecrets => 2,
            Self::Cpuid => 3,
            Self::SvsmCaa => 4,
            Self::SnpKernelHashes => 0x10,
        }
    }

    /// Name used in metadata JSON files.
    pub fn name(self) -> &'static str {
        match self {
            Self::SnpSecMem => "snp_sec_mem",
            Self::SnpSecrets => "snp_secrets",
            Self::Cpuid => "cpuid",
            Self::SvsmCaa => "svsm_caa",
            Self::SnpKernelHashes => "snp_kernel_hashes",
        }
    }

    /// From a metadata JSON name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::SnpSecMem,
            Self::SnpSecrets,
            Self::Cpuid,
            Self::SvsmCaa,
            Self::SnpKernelHashes,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

/// One section of the SEV metadata, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SevSection {
    pub gpa: u32,
    pub size: u32,
    pub kind: SevSectionType,
}

/// What an SNP measurement needs from the firmware besides its pages: the SEV metadata
/// sections (file order), the SEV hashes-table GPA and the AP reset EIP. Auditors can take
/// these from a metadata file instead of the firmware (with an OVMF hash as the seed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SevMetadata {
    pub sections: Vec<SevSection>,
    /// GPA of the SEV hashes table (footer entry `SEV_HASH_TABLE_RV_GUID`), if any.
    pub hashes_table_gpa: Option<u32>,
    /// SEV-ES AP reset EIP (footer entry `SEV_ES_RESET_BLOCK_GUID`), if any.
    pub reset_eip: Option<u32>,
}

impl SevMetadata {
    /// Whether a section of this type is present.
    pub fn has_section(&self, kind: SevSectionType) -> bool {
        self.sections.iter().any(|s| s.kind == kind)
    }

    /// The JSON form read by [`SevMetadata::from_json`] (numbers as `0x…` hex strings).
    pub fn to_json(&self) -> serde_json::Value {
        let sections: Vec<serde_json::Value> = self
            .sections
            .iter()
            .map(|s| {
                serde_json::json!({
                    "gpa": format!("{:#x}", s.gpa),
                    "size": format!("{:#x}", s.size),
                    "type": s.kind.name(),
                })
            })
            .collect();
        serde_json::json!({
            "sections": sections,
            "sev_hashes_table_gpa": self.hashes_table_gpa.map(|g| format!("{g:#x}")),
            "sev_es_reset_eip": self.reset_eip.map(|e| format!("{e:#x}")),
        })
    }

    /// Reads the metadata JSON: `{"sections": [{"gpa", "size", "type"}], "sev_hashes_table_gpa",
    /// "sev_es_reset_eip"}`; numbers are JSON integers or `0x…` strings; `type` is a name
    /// (`snp_sec_mem`, `snp_secrets`, `cpuid`, `svsm_caa`, `snp_kernel_hashes`) or the number.
    pub fn from_json(text: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::MeasurementInputInvalid {
            reason: format!("OVMF metadata file: {reason}"),
        };
        let value: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        let object = value
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        for key in object.keys() {
            if !["sections", "sev_hashes_table_gpa", "sev_es_reset_eip"].contains(&key.as_str()) {
                return Err(bad(format!("unknown key {key:?}")));
            }
        }
        let list = object
            .get("sections")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("\"sections\" must be an array".into()))?;
        if list.len() > MAX_SECTIONS as usize {
            return Err(bad(format!("more than {MAX_SECTIONS} sections")));
        }
        let mut sections = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let gpa =
                json_u32(item.get("gpa")).map_err(|e| bad(format!("section {i} gpa: {e}")))?;
            let size =
                json_u32(item.get("size")).map_err(|e| bad(format!("section {i} size: {e}")))?;
            let kind = match item.get("type") {
                Some(serde_json::Value::String(name)) => SevSectionType::from_name(name)
                    .or_else(|| parse_u32(name).ok().and_then(SevSectionType::from_u32)),
                Some(serde_json::Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(SevSectionType::from_u32),
                _ => None,
            }
            .ok_or_else(|| bad(format!("section {i}: unknown or missing type")))?;
            sections.push(SevSection { gpa, size, kind });
        }
        let optional = |key: &str| -> Result<Option<u32>> {
            match object.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => json_u32(Some(v))
                    .map(Some)
                    .map_err(|e| bad(format!("{key}: {e}"))),
            }
        };
        Ok(Self {
            sections,
            hashes_table_gpa: optional("sev_hashes_table_gpa")?,
            reset_eip: optional("sev_es_reset_eip")?,
        })
    }
}

fn parse_u32(text: &str) -> std::result::Result<u32, String> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => t.parse::<u32>(),
    };
    parsed.map_err(|e| format!("{text:?}: {e}"))
}

fn json_u32(value: Option<&serde_json::Value>) -> std::result::Result<u32, String> {
    match value {
        Some(serde_json::Value::String(s)) => parse_u32(s),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("{n} is not a 32-bit unsigned integer")),
        Some(_) => Err("not a number".into()),
        None => Err("missing".into()),
    }
}

/// One section of the TDVF metadata (TDVF spec, `TDVF_SECTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdvfSection {
    pub data_offset: u32,
    pub raw_data_size: u32,
    pub memory_address: u64,
    pub memory_data_size: u64,
    /// 0 BFV, 1 CFV, 2 TD_HOB, 3 TempMem, 4 PermMem, 5 Payload, 6 PayloadParam.
    pub section_type: u32,
    /// Bit 0: MR.EXTEND (the content is measured); bit 1: PAGE.AUG (added after launch).
    pub attributes: u32,
}

impl TdvfSection {
    /// TDVF attribute: extend MRTD with the content.
    pub const ATTR_MR_EXTEND: u32 = 1;
    /// TDVF attribute: the pages are accepted later (TDH.MEM.PAGE.AUG), not part of MRTD.
    pub const ATTR_PAGE_AUG: u32 = 2;
    /// TDVF section type of the configuration firmware volume (UEFI variables).
    pub const TYPE_CFV: u32 = 1;
}

/// A parsed OVMF image (borrowed).
#[derive(Debug, Clone)]
pub struct Ovmf<'a> {
    data: &'a [u8],
    /// Footer table entries: (GUID string, data), outermost (nearest the footer) first.
    table: Vec<(String, &'a [u8])>,
    sev: Vec<SevSection>,
}

impl<'a> Ovmf<'a> {
    /// Parses the footer table and the SEV metadata of a firmware image.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        if data.len() > MAX_IMAGE {
            return Err(Error::FirmwareMalformed {
                reason: format!(
                    "image of {} bytes is larger than {MAX_IMAGE} bytes",
                    data.len()
                ),
            });
        }
        let table = parse_footer_table(data)?;
        let mut ovmf = Self {
            data,
            table,
            sev: Vec::new(),
        };
        ovmf.sev = ovmf.parse_sev_metadata()?;
        Ok(ovmf)
    }

    /// The image bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Guest-physical address of the first byte: the image ends at 4 GiB.
    pub fn gpa(&self) -> u64 {
        (1u64 << 32).saturating_sub(self.data.len() as u64)
    }

    /// Data of a footer table entry.
    pub fn table_entry(&self, guid: &str) -> Option<&'a [u8]> {
        self.table
            .iter()
            .find(|(g, _)| g == guid)
            .map(|(_, data)| *data)
    }

    /// GUIDs of the footer table entries.
    pub fn table_guids(&self) -> impl Iterator<Item = &str> {
        self.table.iter().map(|(g, _)| g.as_str())
    }

    fn entry_u32(&self, guid: &str, entry: &'static str) -> Result<Option<u32>> {
        match self.table_entry(guid) {
            None => Ok(None),
            Some(data) => le_u32(data, 0, entry).map(Some),
        }
    }

    /// The SEV metadata sections, in file order (empty without SEV metadata).
    pub fn sev_sections(&self) -> &[SevSection] {
        &self.sev
    }

    /// Everything an SNP / SEV-ES measurement takes from the firmware besides its pages.
    pub fn sev_metadata(&self) -> Result<SevMetadata> {
        Ok(SevMetadata {
            sections: self.sev.clone(),
            hashes_table_gpa: self.entry_u32(SEV_HASH_TABLE_RV_GUID, "SEV hashes table entry")?,
            reset_eip: self.entry_u32(SEV_ES_RESET_BLOCK_GUID, "SEV-ES reset block entry")?,
        })
    }

    fn parse_sev_metadata(&self) -> Result<Vec<SevSection>> {
        let Some(offset) = self.entry_u32(SEV_META_DATA_GUID, "SEV metadata entry")? else {
            return Ok(Vec::new());
        };
        let start = self.offset_from_end(offset, "SEV metadata")?;
        let header = field(self.data, start, 16, "SEV metadata header")?;
        if header.get(0..4) != Some(b"ASEV".as_slice()) {
            return Err(Error::FirmwareMalformed {
                reason: "wrong SEV metadata signature (not ASEV)".into(),
            });
        }
        let size = le_u32(header, 4, "SEV metadata size")? as usize;
        let version = le_u32(header, 8, "SEV metadata version")?;
        let count = le_u32(header, 12, "SEV metadata item count")?;
        if version != 1 {
            return Err(Error::FirmwareMalformed {
                reason: format!("SEV metadata version {version}, expected 1"),
            });
        }
        if count > MAX_SECTIONS {
            return Err(Error::FirmwareMalformed {
                reason: format!("SEV metadata declares {count} sections"),
            });
        }
        let items_len = size
            .checked_sub(16)
            .ok_or_else(|| Error::FirmwareMalformed {
                reason: format!("SEV metadata size {size} is smaller than its header"),
            })?;
        let items = field(
            self.data,
            start.saturating_add(16),
            items_len,
            "SEV metadata items",
        )?;
        let mut sections = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let at = i.saturating_mul(12);
            let gpa = le_u32(items, at, "SEV metadata section")?;
            let size = le_u32(items, at.saturating_add(4), "SEV metadata section")?;
            let kind_raw = le_u32(items, at.saturating_add(8), "SEV metadata section")?;
            let kind =
                SevSectionType::from_u32(kind_raw).ok_or_else(|| Error::FirmwareMalformed {
                    reason: format!("unknown SEV metadata section type {kind_raw:#x}"),
                })?;
            sections.push(SevSection { gpa, size, kind });
        }
        Ok(sections)
    }

    /// The TDVF metadata sections, in file order.
    pub fn tdvf_sections(&self) -> Result<Vec<TdvfSection>> {
        let offset = self
            .entry_u32(TDX_META_DATA_GUID, "TDX metadata entry")?
            .ok_or(Error::FirmwareEntryMissing {
                entry: "TDX metadata (TDVF) entry in the OVMF footer table",
            })?;
        let start = self.offset_from_end(offset, "TDVF metadata")?;
        let header = field(self.data, start, 16, "TDVF descriptor")?;
        if header.get(0..4) != Some(b"TDVF".as_slice()) {
            return Err(Error::FirmwareMalformed {
                reason: "wrong TDVF descriptor signature (not TDVF)".into(),
            });
        }
        let length = le_u32(header, 4, "TDVF length")? as usize;
        let version = le_u32(header, 8, "TDVF version")?;
        let count = le_u32(header, 12, "TDVF section count")?;
        if version != 1 {
            return Err(Error::FirmwareMalformed {
                reason: format!("TDVF metadata version {version}, expected 1"),
            });
        }
        if count > MAX_SECTIONS {
            return Err(Error::FirmwareMalformed {
                reason: format!("TDVF metadata declares {count} sections"),
            });
        }
        let needed = (count as usize).saturating_mul(32).saturating_add(16);
        if length < needed {
            return Err(Error::FirmwareMalformed {
                reason: format!("TDVF length {length} is too small for {count} sections"),
            });
        }
        let body = field(self.data, start, needed, "TDVF sections")?;
        let mut sections = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            let at = i.saturating_mul(32).saturating_add(16);
            let what = "TDVF section";
            let section = TdvfSection {
                data_offset: le_u32(body, at, what)?,
                raw_data_size: le_u32(body, at.saturating_add(4), what)?,
                memory_address: le_u64(body, at.saturating_add(8), what)?,
                memory_data_size: le_u64(body, at.saturating_add(16), what)?,
                section_type: le_u32(body, at.saturating_add(24), what)?,
                attributes: le_u32(body, at.saturating_add(28), what)?,
            };
            if section.memory_address % PAGE_SIZE_U64 != 0
                || section.memory_data_size % PAGE_SIZE_U64 != 0
            {
                return Err(Error::FirmwareMalformed {
                    reason: format!("TDVF section {i} is not page-aligned"),
                });
            }
            if u64::from(section.raw_data_size) > section.memory_data_size {
                return Err(Error::FirmwareMalformed {
                    reason: format!("TDVF section {i}: raw data larger than its memory"),
                });
            }
            field(
                self.data,
                section.data_offset as usize,
                section.raw_data_size as usize,
                "TDVF section data",
            )?;
            sections.push(section);
        }
        Ok(sections)
    }

    fn offset_from_end(&self, offset: u32, what: &str) -> Result<usize> {
        self.data
            .len()
            .checked_sub(offset as usize)
            .ok_or_else(|| Error::FirmwareMalformed {
                reason: format!("{what} offset {offset:#x} lies before the image"),
            })
    }
}

/// Reads the footer GUID table; an image without the footer GUID has an empty table.
fn parse_footer_table(data: &[u8]) -> Result<Vec<(String, &[u8])>> {
    let Some(footer_at) = data.len().checked_sub(32 + ENTRY_HEADER) else {
        return Ok(Vec::new());
    };
    let footer_size = le_u16(data, footer_at, "OVMF footer")? as usize;
    let mut guid = [0u8; 16];
    guid.copy_from_slice(field(data, footer_at.saturating_add(2), 16, "OVMF footer")?);
    if guid_string(&guid) != TABLE_FOOTER_GUID {
        return Ok(Vec::new());
    }
    let Some(table_size) = footer_size.checked_sub(ENTRY_HEADER) else {
        return Ok(Vec::new());
    };
    let table_start =
        footer_at
            .checked_sub(table_size)
            .ok_or_else(|| Error::FirmwareMalformed {
                reason: format!("OVMF table size {footer_size} exceeds the image"),
            })?;
    let mut rest = data
        .get(table_start..footer_at)
        .ok_or_else(|| Error::FirmwareMalformed {
            reason: "OVMF table lies outside the image".into(),
        })?;
    let mut entries = Vec::new();
    while rest.len() >= ENTRY_HEADER {
        let header_at = rest.len().saturating_sub(ENTRY_HEADER);
        let size = le_u16(rest, header_at, "OVMF table entry")? as usize;
        if size < ENTRY_HEADER || size > rest.len() {
            return Err(Error::FirmwareMalformed {
                reason: format!("invalid OVMF table entry size {size}"),
            });
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(field(
            rest,
            header_at.saturating_add(2),
            16,
            "OVMF table entry",
        )?);
        let entry_start = rest.len().saturating_sub(size);
        let entry_data =
            rest.get(entry_start..header_at)
                .ok_or_else(|| Error::FirmwareMalformed {
                    reason: "OVMF table entry lies outside the table".into(),
                })?;
        entries.push((guid_string(&guid), entry_data));
        rest = rest.get(..entry_start).unwrap_or_default();
    }
    Ok(entries)
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

    #[test]
    fn guid_round_trips_through_efi_byte_order() {
        let bytes = guid_bytes(TABLE_FOOTER_GUID).unwrap();
        assert_eq!(bytes[0], 0xde);
        assert_eq!(guid_string(&bytes), TABLE_FOOTER_GUID);
    }

    #[test]
    fn amdsev_fixture_has_kernel_hashes_section_and_reset_block() {
        let data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
        let ovmf = Ovmf::parse(&data).unwrap();
        let meta = ovmf.sev_metadata().unwrap();
        assert!(meta.has_section(SevSectionType::SnpKernelHashes));
        assert!(meta.reset_eip.is_some());
        assert!(meta.hashes_table_gpa.is_some());
        assert_eq!(ovmf.gpa(), 0xffff_f000);
    }

    #[test]
    fn ovmfx64_fixture_has_no_kernel_hashes_section() {
        let data = test_vectors::read("measure/snp/ovmf_OvmfX64_suffix.bin");
        let meta = Ovmf::parse(&data).unwrap().sev_metadata().unwrap();
        assert!(!meta.sections.is_empty());
        assert!(!meta.has_section(SevSectionType::SnpKernelHashes));
    }

    #[test]
    fn metadata_json_round_trips() {
        let data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
        let meta = Ovmf::parse(&data).unwrap().sev_metadata().unwrap();
        let json = serde_json::to_vec(&meta.to_json()).unwrap();
        assert_eq!(SevMetadata::from_json(&json).unwrap(), meta);
    }

    #[test]
    fn metadata_json_with_unknown_section_type_is_rejected() {
        let json = br#"{"sections":[{"gpa":"0x1000","size":4096,"type":"bogus"}]}"#;
        assert!(matches!(
            SevMetadata::from_json(json),
            Err(Error::MeasurementInputInvalid { .. })
        ));
    }

    #[test]
    fn image_without_footer_has_no_table_entries() {
        let data = vec![0u8; 8192];
        let ovmf = Ovmf::parse(&data).unwrap();
        assert_eq!(ovmf.table_guids().count(), 0);
        assert!(matches!(
            ovmf.tdvf_sections(),
            Err(Error::FirmwareEntryMissing { .. })
        ));
    }

    #[test]
    fn table_entry_with_size_beyond_table_is_malformed() {
        let mut data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
        let footer_at = data.len() - 50;
        // The entry just before the footer: make its size absurd.
        let prev_header = footer_at - 18;
        data[prev_header] = 0xff;
        data[prev_header + 1] = 0x7f;
        assert!(matches!(
            Ovmf::parse(&data),
            Err(Error::FirmwareMalformed { .. })
        ));
    }

    #[test]
    fn truncated_images_never_panic() {
        let data = test_vectors::read("measure/snp/ovmf_AmdSev_suffix.bin");
        for cut in [0, 1, 17, 50, 51, 100, 1000, 4000] {
            let _ = Ovmf::parse(&data[data.len() - cut..]);
            let _ = Ovmf::parse(&data[..cut]);
        }
    }
}
