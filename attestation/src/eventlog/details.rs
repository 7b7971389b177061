//! What an event's data says, for the human report: strings, UEFI variables, device paths.
//!
//! Best effort and never an error: the digests, not these details, are what replay checks.
//! The interpretation per event type follows the TCG PC Client PFP 1.06 §10.4 structures
//! (and the forms the Confidential Containers `eventlog` crate prints, whose published
//! outputs are our test vectors).

use super::event_type_name;

/// A UEFI variable measured by an `EV_EFI_VARIABLE_*` event (`UEFI_VARIABLE_DATA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiVariable {
    /// The vendor GUID as its 16 bytes in log order.
    pub guid: [u8; 16],
    /// `UnicodeNameLength`: the name's length in UTF-16 code units.
    pub name_length: u64,
    pub name: String,
    pub data: Vec<u8>,
}

/// The decoded part of an event's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDetails {
    /// A description (EFI actions, firmware blob and table names, event tags, IPL strings,
    /// platform configuration flags).
    pub string: Option<String>,
    pub variable: Option<EfiVariable>,
    /// The device path of a boot services application, one text node per element.
    pub device_paths: Option<Vec<String>>,
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

fn utf16(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| {
            u16::from_le_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ])
        })
        .collect();
    String::from_utf16_lossy(&units)
}

/// An EFI GUID in its registry form (`8BE4DF61-93CA-11D2-AA0D-00E098032B8C`).
pub fn efi_guid(bytes: &[u8; 16]) -> String {
    let [a0, a1, a2, a3, b0, b1, c0, c1, d @ ..] = *bytes;
    let d = hex::encode_upper(d);
    format!(
        "{:08X}-{:04X}-{:04X}-{}-{}",
        u32::from_le_bytes([a0, a1, a2, a3]),
        u16::from_le_bytes([b0, b1]),
        u16::from_le_bytes([c0, c1]),
        d.get(..4).unwrap_or_default(),
        d.get(4..).unwrap_or_default()
    )
}

/// Decodes an event's data by its type.
pub fn parse(event_type: u32, data: &[u8]) -> EventDetails {
    let string = |s: String| EventDetails {
        string: Some(s),
        ..EventDetails::default()
    };
    match event_type_name(event_type).unwrap_or_default() {
        "EV_POST_CODE"
        | "EV_ACTION"
        | "EV_COMPACT_HASH"
        | "EV_OMIT_BOOT_DEVICE_EVENTS"
        | "EV_EFI_ACTION" => match std::str::from_utf8(data) {
            Ok(s) => string(s.to_string()),
            Err(_) => EventDetails::default(),
        },
        "EV_EVENT_TAG" => {
            // TCG_PCClientTaggedEvent: id, size, data.
            let text = le_u32(data, 4)
                .and_then(|n| usize::try_from(n).ok())
                .and_then(|n| data.get(8..8usize.checked_add(n)?))
                .and_then(|t| std::str::from_utf8(t).ok());
            match text {
                Some(t) => string(t.replace('\0', "")),
                None => EventDetails::default(),
            }
        }
        "EV_PLATFORM_CONFIG_FLAGS" => {
            let raw = std::str::from_utf8(data).unwrap_or_default();
            let cleaned: String = raw
                .replace('\u{10}', " ")
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            string(cleaned)
        }
        "EV_IPL" => {
            if data.len() < 2 {
                return EventDetails::default();
            }
            if data.starts_with(&[0x2e, 0x00]) {
                // Google's form: 0x2E 0x00, UTF-16LE text, a UTF-16 NUL.
                let end = data.len().saturating_sub(2);
                match data.get(2..end) {
                    Some(text) if !text.is_empty() && text.len() % 2 == 0 => string(utf16(text)),
                    _ => EventDetails::default(),
                }
            } else {
                let cut = data.iter().position(|b| *b == 0).unwrap_or(data.len());
                match data.get(..cut).map(std::str::from_utf8) {
                    Some(Ok(s)) => string(s.to_string()),
                    _ => string(hex::encode(data)),
                }
            }
        }
        "EV_EFI_PLATFORM_FIRMWARE_BLOB2" | "EV_EFI_HANDOFF_TABLES2" => {
            // A one-byte description size, then the description.
            let len = usize::from(data.first().copied().unwrap_or(0));
            match data
                .get(1..1usize.saturating_add(len))
                .map(std::str::from_utf8)
            {
                Some(Ok(s)) => string(s.trim_end_matches('\0').to_string()),
                _ => EventDetails::default(),
            }
        }
        "EV_EFI_VARIABLE_DRIVER_CONFIG"
        | "EV_EFI_VARIABLE_BOOT"
        | "EV_EFI_VARIABLE_BOOT2"
        | "EV_EFI_VARIABLE_AUTHORITY" => EventDetails {
            variable: variable(data),
            ..EventDetails::default()
        },
        "EV_EFI_BOOT_SERVICES_APPLICATION"
        | "EV_EFI_BOOT_SERVICES_DRIVER"
        | "EV_EFI_RUNTIME_SERVICES_DRIVER" => EventDetails {
            device_paths: image_device_paths(data),
            ..EventDetails::default()
        },
        _ => EventDetails::default(),
    }
}

/// `UEFI_VARIABLE_DATA`: GUID, name length, data length, UTF-16 name, data.
fn variable(data: &[u8]) -> Option<EfiVariable> {
    let guid: [u8; 16] = data.get(..16)?.try_into().ok()?;
    let name_length = le_u64(data, 16)?;
    let data_length = le_u64(data, 24)?;
    let name_bytes = usize::try_from(name_length.checked_mul(2)?).ok()?;
    let name_end = 32usize.checked_add(name_bytes)?;
    let name = utf16(data.get(32..name_end)?);
    let data_end = name_end.checked_add(usize::try_from(data_length).ok()?)?;
    let value = data.get(name_end..data_end)?.to_vec();
    Some(EfiVariable {
        guid,
        name_length,
        name,
        data: value,
    })
}

/// `UEFI_IMAGE_LOAD_EVENT`: location, length, link-time address, device path length, path.
fn image_device_paths(data: &[u8]) -> Option<Vec<String>> {
    let len = usize::try_from(le_u64(data, 24)?).ok()?;
    if len == 0 {
        return None;
    }
    let mut path = data.get(32..32usize.checked_add(len)?)?;
    let mut nodes = Vec::new();
    while path.len() >= 4 {
        let kind = path.first().copied().unwrap_or(0);
        let sub = path.get(1).copied().unwrap_or(0);
        let node_len = usize::from(u16::from_le_bytes([
            path.get(2).copied().unwrap_or(0),
            path.get(3).copied().unwrap_or(0),
        ]));
        if kind == 0x7F && sub == 0xFF {
            break;
        }
        let Some(body) = path.get(4..node_len.max(4)) else {
            break;
        };
        if node_len < 4 {
            break;
        }
        if !(kind == 0x7F && sub == 0x01) {
            nodes.push(device_node(kind, sub, body));
        }
        path = path.get(node_len..).unwrap_or_default();
    }
    Some(nodes)
}

/// One device path node in the UEFI text form where we know it (UEFI 2.10 §10.6).
fn device_node(kind: u8, sub: u8, body: &[u8]) -> String {
    let fallback = || format!("Path({kind},{sub},{})", hex::encode(body));
    match (kind, sub) {
        (1, 1) => match (body.first(), body.get(1)) {
            // Function, device, in the order the log's bytes carry them.
            (Some(function), Some(device)) => format!("Pci({function},{device})"),
            _ => fallback(),
        },
        (2, 1) => match (le_u32(body, 0), le_u32(body, 4)) {
            (Some(hid), Some(uid)) if hid & 0xFFFF == 0x41D0 => {
                format!("ACPI(PNP{:04X},{uid})", hid >> 16)
            }
            (Some(hid), Some(uid)) => format!("ACPI({hid:#010x},{uid})"),
            _ => fallback(),
        },
        (4, 1) => {
            let part = le_u32(body, 0);
            let start = le_u64(body, 4);
            let size = le_u64(body, 12);
            let sig: Option<[u8; 16]> = body.get(20..36).and_then(|s| s.try_into().ok());
            let format = body.get(36).copied();
            match (part, start, size, sig, format) {
                (Some(part), Some(start), Some(size), Some(sig), Some(2)) => {
                    format!("HD({part},GPT,{},{start:#x},{size:#x})", efi_guid(&sig))
                }
                (Some(part), Some(start), Some(size), Some(sig), Some(1)) => format!(
                    "HD({part},MBR,{:#010x},{start:#x},{size:#x})",
                    u32::from_le_bytes([sig[0], sig[1], sig[2], sig[3]])
                ),
                _ => fallback(),
            }
        }
        (4, 3) => match body.get(..16).and_then(|g| <[u8; 16]>::try_from(g).ok()) {
            Some(guid) => format!(
                "VenMedia({},{})",
                efi_guid(&guid),
                hex::encode_upper(body.get(16..).unwrap_or_default())
            ),
            None => fallback(),
        },
        (4, 4) => {
            let text = utf16(body);
            format!("File({})", text.trim_end_matches('\0'))
        }
        _ => fallback(),
    }
}
