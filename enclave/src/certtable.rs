//! The SEV-SNP certificate table a host hands to its guests (GHCB spec, "SNP Extended Guest
//! Request"; Linux `auxblob` of configfs-tsm and the `SNP_GET_EXT_REPORT` buffer).
//!
//! Layout: entries of `GUID (16) ‖ offset (u32 LE) ‖ length (u32 LE)`, ended by an all-zero
//! entry; each offset is from the start of the table. GUIDs are in RFC 4122 byte order, as the
//! host tools write them (virtee `snphost`/`sev` and go-sev-guest both read them that way).
//! Parsed by hand: it is 24-byte records, and the crates that parse it either use unsafe
//! pointer casts (`sev`) or are not Rust.

use crate::AttestError;

/// Largest table accepted, in bytes (the sev-guest driver's own limit is 16 KiB; newer hosts
/// may send more, but a VCEK chain is about 4 KiB).
pub const MAX_CERT_TABLE_LEN: usize = 64 * 1024;

/// Most entries accepted before the terminator.
pub const MAX_CERT_TABLE_ENTRIES: usize = 32;

const ENTRY_LEN: usize = 24;

/// VCEK: 63da758d-e664-4564-adc5-f4b93be8accd.
pub const VCEK_GUID: [u8; 16] = [
    0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd,
];
/// VLEK: a8074bc2-a25a-483e-aae6-39c045a0b8a1.
pub const VLEK_GUID: [u8; 16] = [
    0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1,
];
/// ASK: 4ab7b379-bbac-4fe4-a02f-05aef327c782.
pub const ASK_GUID: [u8; 16] = [
    0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82,
];
/// ARK: c0b406a4-a803-4952-9743-3fb6014cd0ae.
pub const ARK_GUID: [u8; 16] = [
    0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae,
];

/// Which certificate an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnpCertKind {
    Vcek,
    Vlek,
    Ask,
    Ark,
    /// A GUID this crate does not know (kept, not interpreted).
    Other([u8; 16]),
}

impl SnpCertKind {
    pub fn from_guid(guid: [u8; 16]) -> Self {
        match guid {
            VCEK_GUID => Self::Vcek,
            VLEK_GUID => Self::Vlek,
            ASK_GUID => Self::Ask,
            ARK_GUID => Self::Ark,
            other => Self::Other(other),
        }
    }

    pub fn guid(self) -> [u8; 16] {
        match self {
            Self::Vcek => VCEK_GUID,
            Self::Vlek => VLEK_GUID,
            Self::Ask => ASK_GUID,
            Self::Ark => ARK_GUID,
            Self::Other(g) => g,
        }
    }
}

/// One certificate of the table (DER, as the host stored it; not verified here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpCertificate {
    pub kind: SnpCertKind,
    pub der: Vec<u8>,
}

fn malformed(reason: impl Into<String>) -> AttestError {
    AttestError::CertTableMalformed {
        reason: reason.into(),
    }
}

/// Parses a certificate table. An empty or all-zero table (the host installed none) gives no
/// certificates. Rejects a missing terminator, entries pointing outside the table or into the
/// entry array, empty entries and duplicate GUIDs.
pub fn parse(table: &[u8]) -> Result<Vec<SnpCertificate>, AttestError> {
    if table.len() > MAX_CERT_TABLE_LEN {
        return Err(AttestError::OutputTooLarge {
            what: "SEV-SNP certificate table",
            limit: MAX_CERT_TABLE_LEN,
        });
    }
    if table.is_empty() {
        return Ok(Vec::new());
    }
    let mut entries = Vec::new();
    let mut chunks = table.chunks(ENTRY_LEN);
    loop {
        let Some(chunk) = chunks.next() else {
            return Err(malformed("no terminating all-zero entry"));
        };
        let entry: &[u8; ENTRY_LEN] = chunk
            .try_into()
            .map_err(|_| malformed("no terminating all-zero entry"))?;
        if entry.iter().all(|&b| b == 0) {
            break;
        }
        if entries.len() == MAX_CERT_TABLE_ENTRIES {
            return Err(malformed(format!(
                "more than {MAX_CERT_TABLE_ENTRIES} entries"
            )));
        }
        let (guid, rest) = entry.split_at(16);
        let (offset, length) = rest.split_at(4);
        let guid: [u8; 16] = guid.try_into().map_err(|_| malformed("entry layout"))?;
        let word = |b: &[u8]| {
            <[u8; 4]>::try_from(b)
                .map(u32::from_le_bytes)
                .map_err(|_| malformed("entry layout"))
        };
        entries.push((guid, word(offset)?, word(length)?));
    }
    // The entry array, terminator included.
    let header_len = entries
        .len()
        .checked_add(1)
        .and_then(|n| n.checked_mul(ENTRY_LEN))
        .ok_or_else(|| malformed("entry count overflow"))?;

    let mut certs: Vec<SnpCertificate> = Vec::with_capacity(entries.len());
    for (guid, offset, length) in entries {
        let kind = SnpCertKind::from_guid(guid);
        if certs.iter().any(|c| c.kind.guid() == guid) {
            return Err(malformed(format!("{kind:?} appears twice")));
        }
        let start = usize::try_from(offset).map_err(|_| malformed("offset overflow"))?;
        let len = usize::try_from(length).map_err(|_| malformed("length overflow"))?;
        if len == 0 {
            return Err(malformed(format!("{kind:?} entry has length 0")));
        }
        if start < header_len {
            return Err(malformed(format!(
                "{kind:?} at offset {start} overlaps the entry array ({header_len} bytes)"
            )));
        }
        let der = start
            .checked_add(len)
            .and_then(|end| table.get(start..end))
            .ok_or_else(|| {
                malformed(format!(
                    "{kind:?} at {start}+{len} lies outside the {}-byte table",
                    table.len()
                ))
            })?;
        certs.push(SnpCertificate {
            kind,
            der: der.to_vec(),
        });
    }
    Ok(certs)
}

/// Builds a table in the host's layout (entries, terminator, then the certificates in order):
/// what a host tool writes, and what tests and the simulated backend hand to [`parse`].
pub fn build(certs: &[SnpCertificate]) -> Vec<u8> {
    let header_len = certs.len().saturating_add(1).saturating_mul(ENTRY_LEN);
    let mut entries = Vec::with_capacity(header_len);
    let mut bodies = Vec::new();
    for cert in certs {
        let offset = header_len.saturating_add(bodies.len());
        entries.extend_from_slice(&cert.kind.guid());
        entries.extend_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes());
        entries.extend_from_slice(
            &u32::try_from(cert.der.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        bodies.extend_from_slice(&cert.der);
    }
    entries.extend_from_slice(&[0u8; ENTRY_LEN]);
    entries.extend_from_slice(&bodies);
    entries
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;

    fn guid_string(g: [u8; 16]) -> String {
        let h =
            |r: std::ops::Range<usize>| g[r].iter().map(|b| format!("{b:02x}")).collect::<String>();
        format!(
            "{}-{}-{}-{}-{}",
            h(0..4),
            h(4..6),
            h(6..8),
            h(8..10),
            h(10..16)
        )
    }

    fn cert(kind: SnpCertKind, fill: u8, len: usize) -> SnpCertificate {
        SnpCertificate {
            kind,
            der: vec![fill; len],
        }
    }

    fn reason(table: &[u8]) -> String {
        match parse(table) {
            Err(AttestError::CertTableMalformed { reason }) => reason,
            other => panic!("expected CertTableMalformed, got {other:?}"),
        }
    }

    #[test]
    fn guids_are_the_documented_ones_in_rfc_byte_order() {
        assert_eq!(
            guid_string(VCEK_GUID),
            "63da758d-e664-4564-adc5-f4b93be8accd"
        );
        assert_eq!(
            guid_string(VLEK_GUID),
            "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
        );
        assert_eq!(
            guid_string(ASK_GUID),
            "4ab7b379-bbac-4fe4-a02f-05aef327c782"
        );
        assert_eq!(
            guid_string(ARK_GUID),
            "c0b406a4-a803-4952-9743-3fb6014cd0ae"
        );
    }

    #[test]
    fn a_host_table_yields_each_certificate_by_kind() {
        let certs = vec![
            cert(SnpCertKind::Ark, 1, 10),
            cert(SnpCertKind::Ask, 2, 20),
            cert(SnpCertKind::Vcek, 3, 30),
            cert(SnpCertKind::Other([9; 16]), 4, 5),
        ];
        let table = build(&certs);
        // 4 entries + terminator, then the bodies.
        assert_eq!(table.len(), 5 * 24 + 65);
        assert_eq!(&table[0..16], &ARK_GUID);
        assert_eq!(u32::from_le_bytes(table[16..20].try_into().unwrap()), 120);
        assert_eq!(parse(&table).unwrap(), certs);
    }

    #[test]
    fn trailing_padding_after_the_certificates_is_ignored() {
        // The driver copies whole pages: the table is followed by zeros.
        let certs = vec![cert(SnpCertKind::Vlek, 7, 33)];
        let mut table = build(&certs);
        table.resize(4096, 0);
        assert_eq!(parse(&table).unwrap(), certs);
    }

    #[test]
    fn empty_and_all_zero_tables_have_no_certificates() {
        assert!(parse(&[]).unwrap().is_empty());
        assert!(parse(&[0; 4096]).unwrap().is_empty());
    }

    #[test]
    fn a_table_without_terminator_is_rejected() {
        let mut table = build(&[cert(SnpCertKind::Vcek, 3, 30)]);
        table.truncate(24);
        assert!(reason(&table).contains("terminating"));
        let table = build(&[cert(SnpCertKind::Vcek, 3, 30)]);
        assert!(reason(&table[..30]).contains("terminating"));
    }

    #[test]
    fn an_entry_outside_the_table_is_rejected() {
        let mut table = build(&[cert(SnpCertKind::Vcek, 3, 30)]);
        table.truncate(table.len() - 1);
        assert!(reason(&table).contains("outside"));
        // A length that overflows offset + length.
        let mut table = build(&[cert(SnpCertKind::Vcek, 3, 30)]);
        table[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(reason(&table).contains("outside"));
    }

    #[test]
    fn an_entry_pointing_into_the_entry_array_is_rejected() {
        let mut table = build(&[cert(SnpCertKind::Vcek, 3, 30)]);
        table[16..20].copy_from_slice(&0u32.to_le_bytes());
        assert!(reason(&table).contains("overlaps"));
    }

    #[test]
    fn empty_entries_and_duplicate_guids_are_rejected() {
        let mut table = build(&[cert(SnpCertKind::Vcek, 3, 30)]);
        table[20..24].copy_from_slice(&0u32.to_le_bytes());
        assert!(reason(&table).contains("length 0"));
        let table = build(&[
            cert(SnpCertKind::Vcek, 3, 30),
            cert(SnpCertKind::Vcek, 4, 30),
        ]);
        assert!(reason(&table).contains("twice"));
    }

    #[test]
    fn too_many_entries_or_bytes_are_rejected() {
        let certs: Vec<_> = (0..=MAX_CERT_TABLE_ENTRIES as u8)
            .map(|i| cert(SnpCertKind::Other([i + 1; 16]), i, 1))
            .collect();
        assert!(reason(&build(&certs)).contains("more than"));
        assert!(matches!(
            parse(&vec![0; MAX_CERT_TABLE_LEN + 1]),
            Err(AttestError::OutputTooLarge { .. })
        ));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parser_never_panics_and_what_it_accepts_rebuilds_to_the_same_certificates(
                bytes in proptest::collection::vec(any::<u8>(), 0..600)
            ) {
                if let Ok(certs) = parse(&bytes) {
                    prop_assert_eq!(parse(&build(&certs)).unwrap(), certs);
                }
            }

            #[test]
            fn mutated_tables_parse_or_are_malformed_never_panic(idx in 0usize..200, val in any::<u8>()) {
                let mut table = build(&[
                    cert(SnpCertKind::Vcek, 3, 40),
                    cert(SnpCertKind::Ask, 4, 40),
                ]);
                let i = idx % table.len();
                table[i] = val;
                let parsed_or_malformed = matches!(
                    parse(&table),
                    Ok(_) | Err(AttestError::CertTableMalformed { .. })
                );
                prop_assert!(parsed_or_malformed);
            }
        }
    }
}
