//! TCG crypto-agile event logs as TDX firmware publishes them (the ACPI CCEL table's log area),
//! their replay to RTMR0-3, and our own RTMR3 runtime log ([`runtime`]).
//!
//! Layout (TCG PC Client Platform Firmware Profile 1.06, §10.2; UEFI 2.10 §38.4): the first
//! event is a `TCG_PCClientPCREvent` with a SHA-1-sized zero digest whose data is the
//! `TCG_EfiSpecIDEvent` ("Spec ID Event03", the digest algorithms and their sizes). Every other
//! event is a `TCG_PCR_EVENT2`: MR index, event type, a count of (algorithm id, digest)
//! pairs, the data size and the data. The log area after the last event is padding (all
//! 0xFF as OVMF leaves it, or all zero as td-shim does); anything else there is rejected.
//!
//! Replay (TDX): skip `EV_NO_ACTION`; MR index 1..4 is RTMR0..3; RTMR ← SHA-384(RTMR ‖ digest),
//! every register starting from 48 zero bytes.
//!
//! Hand-written: the Rust crates that parse these logs pull in anyhow and panic on short
//! input (unchecked slicing), and the format is small; this parser checks every length.

pub mod details;
pub mod runtime;

use crate::error::{Error, Result, Subject};
use sha2::{Digest as _, Sha384};

pub use details::{EfiVariable, EventDetails};

/// TCG algorithm ids (TCG Algorithm Registry).
pub const ALG_SHA1: u16 = 0x0004;
pub const ALG_SHA256: u16 = 0x000B;
pub const ALG_SHA384: u16 = 0x000C;
pub const ALG_SHA512: u16 = 0x000D;
pub const ALG_SM3_256: u16 = 0x0012;

/// `EV_NO_ACTION`: informational, never extended.
pub const EV_NO_ACTION: u32 = 0x3;

/// Largest event log accepted (the CCEL areas seen are 64 KiB – 1 MiB).
pub const MAX_EVENT_LOG: usize = 16 * 1024 * 1024;
/// Most events accepted in one log.
pub const MAX_EVENTS: usize = 65_536;
/// Most digest algorithms in the Spec ID event (and digests per event).
pub const MAX_ALGORITHMS: usize = 16;

/// The RTMR values, RTMR0..RTMR3.
pub type Rtmrs = [[u8; 48]; 4];

/// The log's first event: the TCG Spec ID event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIdEvent {
    pub platform_class: u32,
    pub spec_version_major: u8,
    pub spec_version_minor: u8,
    pub spec_errata: u8,
    pub uintn_size: u8,
    /// (algorithm id, digest size) as the log declares them.
    pub algorithms: Vec<(u16, u16)>,
    pub vendor_info: Vec<u8>,
}

/// One digest of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDigest {
    pub algorithm: u16,
    pub value: Vec<u8>,
}

/// One `TCG_PCR_EVENT2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The MR index as logged (1..4 = RTMR0..3 on TDX; EV_NO_ACTION events may carry 0).
    pub mr_index: u32,
    pub event_type: u32,
    pub digests: Vec<EventDigest>,
    pub data: Vec<u8>,
}

/// A parsed event log: the Spec ID event and every event after it, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLog {
    pub spec_id: SpecIdEvent,
    pub events: Vec<Event>,
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn remaining(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end).map(|s| (s, end))) {
            Some((slice, end)) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(Error::Truncated {
                subject: Subject::EventLog,
                needed: self.pos.saturating_add(n),
                available: self.bytes.len(),
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
}

fn spec_id_error(reason: impl Into<String>) -> Error {
    Error::EventLogSpecIdInvalid {
        reason: reason.into(),
    }
}

/// The digest size fixed by the algorithm, where the algorithm is known.
fn known_digest_size(algorithm: u16) -> Option<u16> {
    match algorithm {
        ALG_SHA1 => Some(20),
        ALG_SHA256 | ALG_SM3_256 => Some(32),
        ALG_SHA384 => Some(48),
        ALG_SHA512 => Some(64),
        _ => None,
    }
}

/// The name TCG gives an algorithm id (`"SHA-384"`), if known.
pub fn algorithm_name(algorithm: u16) -> Option<&'static str> {
    Some(match algorithm {
        ALG_SHA1 => "SHA-1",
        ALG_SHA256 => "SHA-256",
        ALG_SHA384 => "SHA-384",
        ALG_SHA512 => "SHA-512",
        ALG_SM3_256 => "SM3-256",
        _ => return None,
    })
}

/// The TCG name of an event type (`"EV_SEPARATOR"`), if known.
pub fn event_type_name(event_type: u32) -> Option<&'static str> {
    Some(match event_type {
        0x0 => "EV_PREBOOT_CERT",
        0x1 => "EV_POST_CODE",
        0x2 => "EV_UNUSED",
        0x3 => "EV_NO_ACTION",
        0x4 => "EV_SEPARATOR",
        0x5 => "EV_ACTION",
        0x6 => "EV_EVENT_TAG",
        0x7 => "EV_S_CRTM_CONTENTS",
        0x8 => "EV_S_CRTM_VERSION",
        0x9 => "EV_CPU_MICROCODE",
        0xA => "EV_PLATFORM_CONFIG_FLAGS",
        0xB => "EV_TABLE_OF_DEVICES",
        0xC => "EV_COMPACT_HASH",
        0xD => "EV_IPL",
        0xE => "EV_IPL_PARTITION_DATA",
        0xF => "EV_NONHOST_CODE",
        0x10 => "EV_NONHOST_CONFIG",
        0x11 => "EV_NONHOST_INFO",
        0x12 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x8000_0000 => "EV_EFI_EVENT_BASE",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_000A => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000B => "EV_EFI_HANDOFF_TABLES2",
        0x8000_000C => "EV_EFI_VARIABLE_BOOT2",
        0x8000_000D => "EV_EFI_GPT_EVENT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        0x8000_00E0 => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00E1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00E2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        0x8000_00E3 => "EV_EFI_SPDM_DEVICE_POLICY",
        0x8000_00E4 => "EV_EFI_SPDM_DEVICE_AUTHORITY",
        _ => return None,
    })
}

/// The type's TCG name, or `EV_UNKNOWN_0x…` for types TCG does not define.
pub fn event_type_label(event_type: u32) -> String {
    event_type_name(event_type)
        .map(str::to_string)
        .unwrap_or_else(|| format!("EV_UNKNOWN_{event_type:#010x}"))
}

impl SpecIdEvent {
    fn digest_size(&self, algorithm: u16) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|(id, _)| *id == algorithm)
            .map(|(_, size)| usize::from(*size))
    }

    fn parse(data: &[u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let signature: [u8; 16] = r.array()?;
        if &signature != b"Spec ID Event03\0" {
            return Err(spec_id_error(format!(
                "signature is {:?}, not \"Spec ID Event03\"",
                String::from_utf8_lossy(&signature).trim_end_matches('\0')
            )));
        }
        let platform_class = r.u32()?;
        let spec_version_minor = r.u8()?;
        let spec_version_major = r.u8()?;
        let spec_errata = r.u8()?;
        let uintn_size = r.u8()?;
        let count = r.u32()?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count == 0 || count > MAX_ALGORITHMS {
            return Err(spec_id_error(format!(
                "{count} digest algorithms (1..={MAX_ALGORITHMS} accepted)"
            )));
        }
        let mut algorithms = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.u16()?;
            let size = r.u16()?;
            if let Some(expected) = known_digest_size(id) {
                if expected != size {
                    return Err(spec_id_error(format!(
                        "algorithm {id:#06x} declared with {size}-byte digests, it has {expected}"
                    )));
                }
            }
            if size == 0 || algorithms.iter().any(|(a, _)| *a == id) {
                return Err(spec_id_error(format!(
                    "algorithm {id:#06x} listed twice or with size 0"
                )));
            }
            algorithms.push((id, size));
        }
        let vendor_size = r.u8()?;
        let vendor_info = r.take(usize::from(vendor_size))?.to_vec();
        let rest = r.remaining();
        if !rest.is_empty() {
            return Err(Error::TrailingBytes {
                subject: Subject::EventLog,
                count: rest.len(),
            });
        }
        Ok(Self {
            platform_class,
            spec_version_major,
            spec_version_minor,
            spec_errata,
            uintn_size,
            algorithms,
            vendor_info,
        })
    }
}

/// Whether every byte of `bytes` equals `fill`.
fn all_bytes(bytes: &[u8], fill: u8) -> bool {
    bytes.iter().all(|b| *b == fill)
}

impl EventLog {
    /// Parses a whole log area (e.g. the contents of `/sys/firmware/acpi/tables/data/CCEL`).
    ///
    /// Rejects a missing or malformed Spec ID event, truncated events, digests of algorithms
    /// the Spec ID event does not declare, and anything but uniform padding after the log.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_EVENT_LOG {
            return Err(Error::InputTooLarge {
                subject: Subject::EventLog,
                size: bytes.len(),
                limit: MAX_EVENT_LOG,
            });
        }
        let mut r = Reader::new(bytes);
        // TCG_PCClientPCREvent: index, type, SHA-1-sized digest, size, data.
        let _mr_index = r.u32()?;
        let event_type = r.u32()?;
        if event_type != EV_NO_ACTION {
            return Err(spec_id_error(format!(
                "first event has type {event_type:#x}, not EV_NO_ACTION"
            )));
        }
        let _sha1_digest: [u8; 20] = r.array()?;
        let size = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        let spec_id = SpecIdEvent::parse(r.take(size)?)?;

        let mut events = Vec::new();
        loop {
            let rest = r.remaining();
            if rest.is_empty() {
                break;
            }
            // The end: padding (all 0xFF or all zero) from here on, or garbage.
            let header = rest.get(..8).unwrap_or(rest);
            for fill in [0xFF, 0x00] {
                if all_bytes(header, fill) {
                    if all_bytes(rest, fill) {
                        return Ok(Self { spec_id, events });
                    }
                    return Err(Error::TrailingBytes {
                        subject: Subject::EventLog,
                        count: rest.len(),
                    });
                }
            }
            if events.len() >= MAX_EVENTS {
                return Err(Error::LengthOutOfRange {
                    subject: Subject::EventLog,
                    length: events.len().saturating_add(1),
                    limit: MAX_EVENTS,
                });
            }
            events.push(Self::parse_event(&mut r, &spec_id)?);
        }
        Ok(Self { spec_id, events })
    }

    fn parse_event(r: &mut Reader<'_>, spec_id: &SpecIdEvent) -> Result<Event> {
        let mr_index = r.u32()?;
        let event_type = r.u32()?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > spec_id.algorithms.len() {
            return Err(Error::LengthOutOfRange {
                subject: Subject::EventLog,
                length: count,
                limit: spec_id.algorithms.len(),
            });
        }
        let mut digests = Vec::with_capacity(count);
        for _ in 0..count {
            let algorithm = r.u16()?;
            let size = spec_id
                .digest_size(algorithm)
                .ok_or(Error::EventLogUnknownAlgorithm { algorithm })?;
            digests.push(EventDigest {
                algorithm,
                value: r.take(size)?.to_vec(),
            });
        }
        let size = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        let data = r.take(size)?.to_vec();
        Ok(Event {
            mr_index,
            event_type,
            digests,
            data,
        })
    }

    /// Replays the log: RTMR0..3 as the TDX module holds them after these extensions.
    pub fn replay(&self) -> Result<Rtmrs> {
        let mut rtmrs = [[0u8; 48]; 4];
        self.replay_onto(&mut rtmrs)?;
        Ok(rtmrs)
    }

    /// Replays the log onto the given registers (extends them further).
    pub fn replay_onto(&self, rtmrs: &mut Rtmrs) -> Result<()> {
        for (position, event) in self.events.iter().enumerate() {
            if event.event_type == EV_NO_ACTION {
                continue;
            }
            let register = rtmr_of(event.mr_index)?;
            let digest = event
                .sha384()
                .ok_or(Error::EventLogDigestMissing { event: position })?;
            let slot = rtmrs
                .get_mut(register)
                .ok_or(Error::EventLogMrIndexOutOfRange {
                    index: event.mr_index,
                })?;
            extend(slot, &digest);
        }
        Ok(())
    }
}

/// The RTMR (0..3) that MR index 1..4 names.
pub fn rtmr_of(mr_index: u32) -> Result<usize> {
    match mr_index {
        1..=4 => usize::try_from(mr_index)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .ok_or(Error::EventLogMrIndexOutOfRange { index: mr_index }),
        _ => Err(Error::EventLogMrIndexOutOfRange { index: mr_index }),
    }
}

/// RTMR ← SHA-384(RTMR ‖ digest).
pub fn extend(rtmr: &mut [u8; 48], digest: &[u8; 48]) {
    let mut h = Sha384::new();
    h.update(&rtmr[..]);
    h.update(digest);
    rtmr.copy_from_slice(&h.finalize());
}

impl Event {
    /// The event's SHA-384 digest, if it has one.
    pub fn sha384(&self) -> Option<[u8; 48]> {
        self.digests
            .iter()
            .find(|d| d.algorithm == ALG_SHA384)
            .and_then(|d| <[u8; 48]>::try_from(d.value.as_slice()).ok())
    }

    /// Whether every digest the event carries is the hash of its data (true for events
    /// that measure their own data, such as separators and EFI actions; false where the
    /// firmware measured something else, such as an image or a variable's data).
    pub fn digest_matches_data(&self) -> bool {
        !self.digests.is_empty()
            && self.digests.iter().all(|d| match d.algorithm {
                ALG_SHA256 => sha2::Sha256::digest(&self.data)[..] == d.value[..],
                ALG_SHA384 => Sha384::digest(&self.data)[..] == d.value[..],
                ALG_SHA512 => sha2::Sha512::digest(&self.data)[..] == d.value[..],
                _ => false,
            })
    }

    /// What the event's data says (strings, variable names, device paths), best effort.
    pub fn details(&self) -> EventDetails {
        details::parse(self.event_type, &self.data)
    }
}

/// Compares replayed RTMRs with a quote's: one [`Error::RtmrMismatch`] per differing register.
pub fn compare_rtmrs(replayed: &Rtmrs, quote: &Rtmrs) -> Vec<Error> {
    replayed
        .iter()
        .zip(quote.iter())
        .enumerate()
        .filter(|(_, (r, q))| r != q)
        .map(|(register, (r, q))| Error::RtmrMismatch {
            register,
            replayed: hex::encode(r),
            quote: hex::encode(q),
        })
        .collect()
}

/// Checks replayed RTMRs against a verified TDX quote: `Ok(())` when all four equal, else
/// every [`Error::RtmrMismatch`]; an SGX quote (no RTMRs) is [`Error::UnsupportedEvidence`].
pub fn check_against_quote(
    replayed: &Rtmrs,
    quote: &crate::tdx::VerifiedQuote,
) -> std::result::Result<(), Vec<Error>> {
    let Some(td) = quote.quote.td_report() else {
        return Err(vec![Error::UnsupportedEvidence {
            reason: "an SGX quote has no RTMRs".into(),
        }]);
    };
    let mismatches = compare_rtmrs(replayed, &td.rt_mr);
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches)
    }
}

#[cfg(test)]
mod tests;
