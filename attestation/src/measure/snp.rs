//! SEV-SNP launch digest (and the SEV / SEV-ES launch digests) of an OVMF direct boot.
//!
//! Byte-exact with virtee's `sev-snp-measure` (Python; the reference the AMD ecosystem uses):
//! the firmware pages, then the SEV metadata sections in file order (pre-validated memory as
//! zero pages, the secrets page, the CPUID page, the kernel-hashes page), then one VMSA page
//! per vCPU, each step `LD ← SHA-384(PAGE_INFO)` (SNP ABI spec, `PAGE_INFO`, table 67).
//!
//! Differences from the `sev` crate's measurement module that matter here: for EC2 the initial
//! RDX of every VMSA is 0x600 (sev-snp-measure since 2026-04-28, matching what EC2 launches;
//! sev 8.0.0 still writes 0), and on EC2 the CPUID page is measured after every other section.
//! We follow sev-snp-measure, which is what published EC2 reference values are computed with.

use super::ovmf::{Ovmf, SevMetadata, SevSectionType};
use super::{sha256, sha384, PAGE_SIZE};
use crate::error::{Error, Result};

/// Most vCPUs accepted (QEMU's maximum for x86 guests is far below).
pub const MAX_VCPUS: u32 = 4096;
/// sev-snp-measure's default guest features (SNP active only); 0x21 adds DebugSwap.
pub const DEFAULT_GUEST_FEATURES: u64 = 0x1;
/// Most bytes the SEV metadata sections may declare in total (the guest's low 4 GiB).
const MAX_SECTION_BYTES: u64 = 1 << 32;
/// Initial EIP of the bootstrap processor.
const BSP_EIP: u32 = 0xffff_fff0;
/// GPA recorded for VMSA pages: (u64)-1, page-aligned, bits above 51 cleared.
const VMSA_GPA: u64 = 0xFFFF_FFFF_F000;

/// The hypervisor whose initial register conventions the VMSA pages follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vmm {
    Qemu,
    /// AWS EC2: other segment attributes, zero MXCSR/FCW, RDX 0x600, CPUID page last.
    Ec2,
    /// Google Compute Engine: other PAT, zero MXCSR/FCW, RDX 0x600, pre-validated memory
    /// unmeasured.
    Gce,
}

impl Vmm {
    /// `qemu`, `ec2` or `gce` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "qemu" => Some(Self::Qemu),
            "ec2" => Some(Self::Ec2),
            "gce" => Some(Self::Gce),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Qemu => "qemu",
            Self::Ec2 => "ec2",
            Self::Gce => "gce",
        }
    }
}

/// CPUID Fn0000_0001_EAX signature from family, model, stepping (AMD CPUID spec #25481).
pub const fn cpu_sig(family: u32, model: u32, stepping: u32) -> u32 {
    let (family_low, family_high) = if family > 0xf {
        (0xf, family.wrapping_sub(0xf) & 0xff)
    } else {
        (family, 0)
    };
    (family_high << 20)
        | (((model >> 4) & 0xf) << 16)
        | (family_low << 8)
        | ((model & 0xf) << 4)
        | (stepping & 0xf)
}

/// The vCPU types of QEMU's `builtin_x86_defs` that sev-snp-measure knows, with signatures.
pub const VCPU_TYPES: &[(&str, u32)] = &[
    ("EPYC", cpu_sig(23, 1, 2)),
    ("EPYC-v1", cpu_sig(23, 1, 2)),
    ("EPYC-v2", cpu_sig(23, 1, 2)),
    ("EPYC-IBPB", cpu_sig(23, 1, 2)),
    ("EPYC-v3", cpu_sig(23, 1, 2)),
    ("EPYC-v4", cpu_sig(23, 1, 2)),
    ("EPYC-Rome", cpu_sig(23, 49, 0)),
    ("EPYC-Rome-v1", cpu_sig(23, 49, 0)),
    ("EPYC-Rome-v2", cpu_sig(23, 49, 0)),
    ("EPYC-Rome-v3", cpu_sig(23, 49, 0)),
    ("EPYC-Milan", cpu_sig(25, 1, 1)),
    ("EPYC-Milan-v1", cpu_sig(25, 1, 1)),
    ("EPYC-Milan-v2", cpu_sig(25, 1, 1)),
    ("EPYC-Genoa", cpu_sig(25, 17, 0)),
    ("EPYC-Genoa-v1", cpu_sig(25, 17, 0)),
    ("EPYC-Turin", cpu_sig(26, 0, 0)),
];

/// The CPUID signature of a QEMU vCPU type (exact name, as QEMU spells it).
pub fn vcpu_signature(name: &str) -> Result<u32> {
    VCPU_TYPES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, sig)| *sig)
        .ok_or_else(|| Error::UnknownVcpuType { name: name.into() })
}

/// The SEV hashes table QEMU writes for a measured direct boot: SHA-256 of the kernel file,
/// of the initrd (empty without one) and of the command line plus its NUL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelHashes {
    pub kernel: [u8; 32],
    pub initrd: [u8; 32],
    pub cmdline: [u8; 32],
}

const HASH_TABLE_HEADER_GUID: &str = "9438d606-4f22-4cc9-b479-a793d411fd21";
const KERNEL_ENTRY_GUID: &str = "4de79437-abd2-427f-b835-d5b172d2045b";
const INITRD_ENTRY_GUID: &str = "44baf731-3a2f-4bd7-9af1-41e29169781d";
const CMDLINE_ENTRY_GUID: &str = "97d02dd8-bd20-4c94-aa78-e7714d36ab2a";
/// GUID ‖ u16 length ‖ three entries of (GUID ‖ u16 length ‖ SHA-256).
const TABLE_LEN: usize = 16 + 2 + 3 * ENTRY_LEN;
const ENTRY_LEN: usize = 16 + 2 + 32;
/// The table padded to 16 bytes, as QEMU places it.
pub const PADDED_TABLE_LEN: usize = (TABLE_LEN + 15) & !15;

impl KernelHashes {
    /// From the file contents (initrd `None` = no initrd: the hash of the empty string).
    pub fn from_files(kernel: &[u8], initrd: Option<&[u8]>, append: Option<&str>) -> Self {
        Self::from_hashes(sha256(kernel), sha256(initrd.unwrap_or_default()), append)
    }

    /// From SHA-256 digests of the kernel and initrd files and the command line.
    pub fn from_hashes(kernel: [u8; 32], initrd: [u8; 32], append: Option<&str>) -> Self {
        let mut cmdline = append.unwrap_or_default().as_bytes().to_vec();
        cmdline.push(0);
        Self {
            kernel,
            initrd,
            cmdline: sha256(&cmdline),
        }
    }

    /// The padded table bytes (cmdline, initrd, kernel order).
    pub fn table(&self) -> [u8; PADDED_TABLE_LEN] {
        let mut out = [0u8; PADDED_TABLE_LEN];
        let mut w = Writer::new(&mut out);
        w.guid(HASH_TABLE_HEADER_GUID);
        w.bytes(&(TABLE_LEN as u16).to_le_bytes());
        for (guid, hash) in [
            (CMDLINE_ENTRY_GUID, &self.cmdline),
            (INITRD_ENTRY_GUID, &self.initrd),
            (KERNEL_ENTRY_GUID, &self.kernel),
        ] {
            w.guid(guid);
            w.bytes(&(ENTRY_LEN as u16).to_le_bytes());
            w.bytes(hash);
        }
        out
    }
}

/// Sequential writer into a fixed buffer (silently stops at its end; sizes are constants).
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, at: 0 }
    }
    fn bytes(&mut self, data: &[u8]) {
        let end = self.at.saturating_add(data.len());
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(data);
        }
        self.at = end;
    }
    fn guid(&mut self, guid: &str) {
        self.bytes(&super::ovmf::guid_bytes(guid).unwrap_or_default());
    }
}

/// The SNP guest context: the running launch digest.
#[derive(Debug, Clone)]
pub struct Gctx {
    ld: [u8; 48],
}

/// PAGE_INFO page types.
const PAGE_NORMAL: u8 = 0x01;
const PAGE_VMSA: u8 = 0x02;
const PAGE_ZERO: u8 = 0x03;
const PAGE_UNMEASURED: u8 = 0x04;
const PAGE_SECRETS: u8 = 0x05;
const PAGE_CPUID: u8 = 0x06;

impl Gctx {
    /// A context starting from `seed` (zero, or an OVMF hash).
    pub fn new(seed: [u8; 48]) -> Self {
        Self { ld: seed }
    }

    /// The launch digest so far.
    pub fn ld(&self) -> [u8; 48] {
        self.ld
    }

    fn update(&mut self, page_type: u8, gpa: u64, contents: &[u8; 48]) {
        let mut info = [0u8; 0x70];
        put(&mut info, 0, &self.ld);
        put(&mut info, 48, contents);
        put(&mut info, 96, &0x70u16.to_le_bytes());
        put(&mut info, 98, &[page_type]);
        // is_imi, vmpl3/2/1 permissions and a reserved byte stay zero.
        put(&mut info, 104, &gpa.to_le_bytes());
        self.ld = sha384(&info);
    }

    /// Measures `data` (a whole number of pages) as normal pages from `gpa`.
    pub fn update_normal_pages(&mut self, gpa: u64, data: &[u8]) -> Result<()> {
        if data.len() % PAGE_SIZE != 0 {
            return Err(Error::MeasurementInputInvalid {
                reason: format!("{} bytes are not a whole number of pages", data.len()),
            });
        }
        for (i, page) in data.chunks_exact(PAGE_SIZE).enumerate() {
            let offset = (i as u64).saturating_mul(PAGE_SIZE as u64);
            self.update(PAGE_NORMAL, gpa.saturating_add(offset), &sha384(page));
        }
        Ok(())
    }

    fn update_pages(&mut self, page_type: u8, gpa: u32, size: u32) -> Result<()> {
        if size as usize % PAGE_SIZE != 0 {
            return Err(Error::MeasurementInputInvalid {
                reason: format!("section at {gpa:#x} of {size:#x} bytes is not page-sized"),
            });
        }
        let mut offset = 0u64;
        while offset < u64::from(size) {
            self.update(page_type, u64::from(gpa).saturating_add(offset), &[0u8; 48]);
            offset = offset.saturating_add(PAGE_SIZE as u64);
        }
        Ok(())
    }

    fn update_vmsa_page(&mut self, page: &[u8; PAGE_SIZE]) {
        self.update(PAGE_VMSA, VMSA_GPA, &sha384(page));
    }
}

/// The OVMF hash: the launch digest after the firmware pages only (sev-snp-measure's
/// `snp:ovmf-hash` mode), the seed of [`Firmware::Seed`].
pub fn ovmf_hash(ovmf: &Ovmf<'_>) -> Result<[u8; 48]> {
    let mut gctx = Gctx::new([0u8; 48]);
    gctx.update_normal_pages(ovmf.gpa(), ovmf.data())?;
    Ok(gctx.ld())
}

/// Where the firmware part of an SNP measurement comes from.
#[derive(Debug, Clone, Copy)]
pub enum Firmware<'a> {
    /// The firmware image itself (its pages and metadata).
    Image(&'a Ovmf<'a>),
    /// A precomputed OVMF hash ([`ovmf_hash`]) plus the firmware's metadata, so an auditor can
    /// measure without the image.
    Seed {
        ovmf_hash: [u8; 48],
        metadata: &'a SevMetadata,
    },
}

/// The guest-side parameters of an SNP launch.
#[derive(Debug, Clone, Copy)]
pub struct SnpParams {
    pub vcpus: u32,
    /// CPUID signature of the vCPU type ([`vcpu_signature`]); QEMU only, EC2/GCE write 0x600.
    pub vcpu_sig: u32,
    pub vmm: Vmm,
    /// SEV_FEATURES of every VMSA (0x1: SNP; 0x21: SNP + DebugSwap).
    pub guest_features: u64,
    /// The measured direct boot's hashes; `None` when no kernel is given.
    pub kernel_hashes: Option<KernelHashes>,
}

/// The SEV-SNP launch digest (48 bytes), as the report's MEASUREMENT field.
pub fn snp_launch_digest(firmware: Firmware<'_>, params: &SnpParams) -> Result<[u8; 48]> {
    check_vcpus(params.vcpus)?;
    let owned;
    let (mut gctx, metadata) = match firmware {
        Firmware::Image(ovmf) => {
            let mut gctx = Gctx::new([0u8; 48]);
            gctx.update_normal_pages(ovmf.gpa(), ovmf.data())?;
            owned = ovmf.sev_metadata()?;
            (gctx, &owned)
        }
        Firmware::Seed {
            ovmf_hash,
            metadata,
        } => (Gctx::new(ovmf_hash), metadata),
    };
    // Untrusted metadata: bound the work (real firmware declares a few MiB).
    let declared = metadata
        .sections
        .iter()
        .fold(0u64, |sum, s| sum.saturating_add(u64::from(s.size)));
    if declared > MAX_SECTION_BYTES {
        return Err(Error::MeasurementInputInvalid {
            reason: format!("SEV metadata sections declare {declared:#x} bytes (limit 4 GiB)"),
        });
    }
    // sev-snp-measure checks this after measuring the sections; the result is the same error.
    if params.kernel_hashes.is_some() && !metadata.has_section(SevSectionType::SnpKernelHashes) {
        return Err(Error::KernelHashesUnsupported);
    }
    for section in &metadata.sections {
        match section.kind {
            SevSectionType::SnpSecMem if params.vmm == Vmm::Gce => {
                gctx.update_pages(PAGE_UNMEASURED, section.gpa, section.size)?
            }
            SevSectionType::SnpSecMem | SevSectionType::SvsmCaa => {
                gctx.update_pages(PAGE_ZERO, section.gpa, section.size)?
            }
            SevSectionType::SnpSecrets => gctx.update_pages(PAGE_SECRETS, section.gpa, 4096)?,
            SevSectionType::Cpuid if params.vmm == Vmm::Ec2 => {}
            SevSectionType::Cpuid => gctx.update_pages(PAGE_CPUID, section.gpa, 4096)?,
            SevSectionType::SnpKernelHashes => match &params.kernel_hashes {
                Some(hashes) => {
                    let page = hashes_page(metadata, hashes, section.size)?;
                    gctx.update_normal_pages(u64::from(section.gpa), &page)?;
                }
                None => gctx.update_pages(PAGE_ZERO, section.gpa, section.size)?,
            },
        }
    }
    if params.vmm == Vmm::Ec2 {
        for section in &metadata.sections {
            if section.kind == SevSectionType::Cpuid {
                gctx.update_pages(PAGE_CPUID, section.gpa, 4096)?;
            }
        }
    }
    let pages = VmsaPages::new(metadata, params.vcpu_sig, params.guest_features, params.vmm)?;
    for i in 0..params.vcpus {
        gctx.update_vmsa_page(pages.page(i));
    }
    Ok(gctx.ld())
}

/// The kernel-hashes page: the padded table at the table GPA's offset within the page.
fn hashes_page(metadata: &SevMetadata, hashes: &KernelHashes, size: u32) -> Result<Vec<u8>> {
    if size as usize != PAGE_SIZE {
        return Err(Error::FirmwareMalformed {
            reason: format!("SNP_KERNEL_HASHES section of {size:#x} bytes, expected one page"),
        });
    }
    let gpa = metadata
        .hashes_table_gpa
        .ok_or(Error::FirmwareEntryMissing {
            entry: "SEV hashes table entry (SEV_HASH_TABLE_RV_GUID) in the OVMF footer table",
        })?;
    let offset = gpa as usize & (PAGE_SIZE - 1);
    let mut page = vec![0u8; PAGE_SIZE];
    let end = offset.saturating_add(PADDED_TABLE_LEN);
    let dst = page
        .get_mut(offset..end)
        .ok_or_else(|| Error::FirmwareMalformed {
            reason: format!("the SEV hashes table at {gpa:#x} crosses a page boundary"),
        })?;
    dst.copy_from_slice(&hashes.table());
    Ok(page)
}

fn check_vcpus(vcpus: u32) -> Result<()> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(Error::MeasurementInputInvalid {
            reason: format!("{vcpus} vCPUs; expected 1..={MAX_VCPUS}"),
        });
    }
    Ok(())
}

/// The BSP and AP VMSA pages.
struct VmsaPages {
    bsp: Box<[u8; PAGE_SIZE]>,
    ap: Option<Box<[u8; PAGE_SIZE]>>,
}

impl VmsaPages {
    fn new(metadata: &SevMetadata, vcpu_sig: u32, sev_features: u64, vmm: Vmm) -> Result<Self> {
        let reset_eip = metadata.reset_eip.ok_or(Error::FirmwareEntryMissing {
            entry: "SEV-ES reset block (SEV_ES_RESET_BLOCK_GUID) in the OVMF footer table",
        })?;
        let bsp = vmsa_page(BSP_EIP, sev_features, vcpu_sig, vmm);
        let ap = (reset_eip != 0).then(|| vmsa_page(reset_eip, sev_features, vcpu_sig, vmm));
        Ok(Self { bsp, ap })
    }

    /// vCPU 0 is the BSP; the others start at the AP reset EIP (the BSP page when the firmware
    /// declares none, which no real OVMF does).
    fn page(&self, vcpu: u32) -> &[u8; PAGE_SIZE] {
        match (&self.ap, vcpu) {
            (Some(ap), 1..) => ap,
            _ => &self.bsp,
        }
    }
}

/// One VMSA page (struct sev_es_save_area, AMD APM vol. 2 table B-4) with the initial
/// register state that QEMU / EC2 / GCE give a vCPU (sev-snp-measure `vmsa.py`).
fn vmsa_page(eip: u32, sev_features: u64, vcpu_sig: u32, vmm: Vmm) -> Box<[u8; PAGE_SIZE]> {
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let (cs_flags, ss_flags, tr_flags, rdx, mxcsr, fcw, g_pat): (
        u16,
        u16,
        u16,
        u64,
        u32,
        u16,
        u64,
    ) = match vmm {
        Vmm::Qemu => (
            0x9b,
            0x93,
            0x8b,
            u64::from(vcpu_sig),
            0x1f80,
            0x37f,
            0x0007_0406_0007_0406,
        ),
        Vmm::Ec2 => (
            if eip == BSP_EIP { 0x9a } else { 0x9b },
            0x92,
            0x83,
            0x600,
            0,
            0,
            0x0007_0406_0007_0406,
        ),
        Vmm::Gce => (0x9b, 0x93, 0x8b, 0x600, 0, 0, 0x0007_0106),
    };
    let mut seg = |offset: usize, selector: u16, attrib: u16, limit: u32, base: u64| {
        let p = page.as_mut_slice();
        put(p, offset, &selector.to_le_bytes());
        put(p, offset.saturating_add(2), &attrib.to_le_bytes());
        put(p, offset.saturating_add(4), &limit.to_le_bytes());
        put(p, offset.saturating_add(8), &base.to_le_bytes());
    };
    seg(0x00, 0, 0x93, 0xffff, 0); // es
    seg(0x10, 0xf000, cs_flags, 0xffff, u64::from(eip & 0xffff_0000)); // cs
    seg(0x20, 0, ss_flags, 0xffff, 0); // ss
    seg(0x30, 0, 0x93, 0xffff, 0); // ds
    seg(0x40, 0, 0x93, 0xffff, 0); // fs
    seg(0x50, 0, 0x93, 0xffff, 0); // gs
    seg(0x60, 0, 0, 0xffff, 0); // gdtr
    seg(0x70, 0, 0x82, 0xffff, 0); // ldtr
    seg(0x80, 0, 0, 0xffff, 0); // idtr
    seg(0x90, 0, tr_flags, 0xffff, 0); // tr
    let p = page.as_mut_slice();
    put(p, 0xd0, &0x1000u64.to_le_bytes()); // efer: KVM sets EFER_SVME
    put(p, 0x148, &0x40u64.to_le_bytes()); // cr4: X86_CR4_MCE
    put(p, 0x158, &0x10u64.to_le_bytes()); // cr0
    put(p, 0x160, &0x400u64.to_le_bytes()); // dr7
    put(p, 0x168, &0xffff_0ff0u64.to_le_bytes()); // dr6
    put(p, 0x170, &0x2u64.to_le_bytes()); // rflags
    put(p, 0x178, &u64::from(eip & 0xffff).to_le_bytes()); // rip
    put(p, 0x268, &g_pat.to_le_bytes()); // g_pat
    put(p, 0x310, &rdx.to_le_bytes()); // rdx
    put(p, 0x3b0, &sev_features.to_le_bytes()); // sev_features
    put(p, 0x3e8, &0x1u64.to_le_bytes()); // xcr0
    put(p, 0x408, &mxcsr.to_le_bytes()); // mxcsr
    put(p, 0x410, &fcw.to_le_bytes()); // x87_fcw
    page
}

fn put(page: &mut [u8], offset: usize, bytes: &[u8]) {
    if let Some(dst) = page.get_mut(offset..offset.saturating_add(bytes.len())) {
        dst.copy_from_slice(bytes);
    }
}

/// The SEV-ES launch digest (SHA-256 of the firmware, the hashes table, the VMSA pages).
pub fn seves_launch_digest(
    ovmf: &Ovmf<'_>,
    vcpus: u32,
    vcpu_sig: u32,
    vmm: Vmm,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<[u8; 32]> {
    check_vcpus(vcpus)?;
    let metadata = ovmf.sev_metadata()?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(ovmf.data());
    add_sev_hashes_table(&mut ctx, &metadata, kernel_hashes)?;
    let pages = VmsaPages::new(&metadata, vcpu_sig, 0, vmm)?;
    for i in 0..vcpus {
        ctx.update(pages.page(i));
    }
    Ok(finish256(ctx))
}

/// The SEV (plain) launch digest: SHA-256 of the firmware and the hashes table.
pub fn sev_launch_digest(
    ovmf: &Ovmf<'_>,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<[u8; 32]> {
    let metadata = ovmf.sev_metadata()?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(ovmf.data());
    add_sev_hashes_table(&mut ctx, &metadata, kernel_hashes)?;
    Ok(finish256(ctx))
}

fn add_sev_hashes_table(
    ctx: &mut ring::digest::Context,
    metadata: &SevMetadata,
    kernel_hashes: Option<&KernelHashes>,
) -> Result<()> {
    if let Some(hashes) = kernel_hashes {
        if metadata.hashes_table_gpa.unwrap_or(0) == 0 {
            return Err(Error::KernelHashesUnsupported);
        }
        ctx.update(&hashes.table());
    }
    Ok(())
}

fn finish256(ctx: ring::digest::Context) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests;
