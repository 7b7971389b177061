use super::*;

fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

/// The claims of `tests/data/claims/v1-full.bin` (values listed in its README).
fn full() -> Claims {
    Claims {
        platform: ClaimsPlatform::Tdx,
        tls_spki_sha256: seq(0x00),
        hpke_public_key: Some(HpkePublicKey::new(0x0020, seq::<32>(0x20).to_vec()).unwrap()),
        model: ModelIdentity {
            blake3: seq(0x40),
            dm_verity_root: Some(seq(0x60)),
        },
        config_digest: seq(0x80),
        created_at: 1_764_000_000,
        expires_at: 1_764_086_400,
        nonce: Some(Nonce::new(seq::<16>(0xa0).to_vec()).unwrap()),
        gpu: None,
    }
}

/// The claims of `tests/data/claims/v1-minimal.bin`.
fn minimal() -> Claims {
    Claims {
        platform: ClaimsPlatform::SimulatedSnp,
        tls_spki_sha256: seq(0x00),
        hpke_public_key: None,
        model: ModelIdentity {
            blake3: seq(0x40),
            dm_verity_root: None,
        },
        config_digest: seq(0x80),
        created_at: 1_764_000_000,
        expires_at: 1_764_003_600,
        nonce: None,
        gpu: None,
    }
}

fn vector(name: &str) -> (Vec<u8>, [u8; 64]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/claims");
    let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
    let hex_text = std::fs::read_to_string(dir.join(format!("{name}.report_data.hex"))).unwrap();
    let rd: [u8; 64] = hex::decode(hex_text.trim()).unwrap().try_into().unwrap();
    (bytes, rd)
}

/// Splits an encoding into its fields (tag, value) to build altered encodings.
fn fields(encoded: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut body = &encoded[HEADER_LEN..];
    let mut out = Vec::new();
    while !body.is_empty() {
        let len = u16::from_be_bytes([body[1], body[2]]) as usize;
        out.push((body[0], body[3..3 + len].to_vec()));
        body = &body[3 + len..];
    }
    out
}

/// Re-assembles fields under a correct header (so only the field-level defect remains).
fn assemble(fields: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (tag, value) in fields {
        body.push(*tag);
        body.extend_from_slice(&(value.len() as u16).to_be_bytes());
        body.extend_from_slice(value);
    }
    let mut out = b"CCLM\x00\x01".to_vec();
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn defect(bytes: &[u8]) -> ClaimsDefect {
    match Claims::from_bytes(bytes) {
        Err(Error::ClaimsMalformed { defect }) => defect,
        other => panic!("expected ClaimsMalformed, got {other:?}"),
    }
}

#[test]
fn documented_vectors_decode_to_their_listed_claims_and_report_data() {
    for (name, claims) in [("v1-full", full()), ("v1-minimal", minimal())] {
        let (bytes, rd) = vector(name);
        let parsed = Claims::from_bytes(&bytes).unwrap();
        assert_eq!(parsed, claims, "{name}");
        assert_eq!(parsed.to_bytes(), bytes, "{name} re-encodes to itself");
        assert_eq!(claims.report_data(), rd, "{name}");
        parsed.check_binding(&rd).unwrap();
    }
}

#[test]
fn report_data_is_sha512_of_tag_and_encoding() {
    let c = full();
    let mut input = b"cocoon-claims-v1\0".to_vec();
    input.extend_from_slice(&c.to_bytes());
    let expected: [u8; 64] = Sha512::digest(&input).into();
    assert_eq!(c.report_data(), expected);
}

#[test]
fn every_field_change_changes_report_data() {
    let base = full();
    let rd = base.report_data();
    let mut variants = Vec::new();
    let mut c = base.clone();
    c.platform = ClaimsPlatform::SimulatedTdx;
    variants.push(c);
    let mut c = base.clone();
    c.tls_spki_sha256[31] ^= 1;
    variants.push(c);
    let mut c = base.clone();
    c.hpke_public_key = None;
    variants.push(c);
    let mut c = base.clone();
    c.hpke_public_key = Some(HpkePublicKey::new(0x0021, seq::<32>(0x20).to_vec()).unwrap());
    variants.push(c);
    let mut c = base.clone();
    c.model.blake3[0] ^= 1;
    variants.push(c);
    let mut c = base.clone();
    c.model.dm_verity_root = None;
    variants.push(c);
    let mut c = base.clone();
    c.config_digest[5] ^= 1;
    variants.push(c);
    let mut c = base.clone();
    c.created_at += 1;
    variants.push(c);
    let mut c = base.clone();
    c.expires_at += 1;
    variants.push(c);
    let mut c = base.clone();
    c.nonce = Some(Nonce::new(vec![1]).unwrap());
    variants.push(c);
    let mut c = base.clone();
    c.nonce = None;
    variants.push(c);
    for v in variants {
        assert_ne!(v.report_data(), rd, "{v:?}");
        assert!(
            matches!(v.check_binding(&rd), Err(Error::ReportDataMismatch { .. })),
            "{v:?}"
        );
        // Every variant still round-trips.
        assert_eq!(Claims::from_bytes(&v.to_bytes()).unwrap(), v);
    }
}

#[test]
fn report_data_of_other_claims_is_a_binding_mismatch() {
    let err = full().check_binding(&minimal().report_data()).unwrap_err();
    match err {
        Error::ReportDataMismatch { expected, actual } => {
            assert_eq!(expected, hex::encode(full().report_data()));
            assert_eq!(actual, hex::encode(minimal().report_data()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_flipped_report_data_bit_is_a_binding_mismatch() {
    let c = full();
    for i in [0usize, 31, 63] {
        let mut rd = c.report_data();
        rd[i] ^= 0x80;
        assert!(matches!(
            c.check_binding(&rd),
            Err(Error::ReportDataMismatch { .. })
        ));
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = full().to_bytes();
    for len in 0..bytes.len() {
        let err = Claims::from_bytes(&bytes[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Truncated {
                    subject: Subject::Claims,
                    ..
                }
            ),
            "len {len}: {err:?}"
        );
    }
}

#[test]
fn a_truncated_field_inside_a_consistent_header_is_rejected() {
    let mut f = fields(&full().to_bytes());
    f.pop();
    let mut bytes = assemble(&f);
    // Announce one byte more in the last field's length than is present.
    let body_len = u16::from_be_bytes([bytes[6], bytes[7]]);
    bytes.extend_from_slice(&[tag::NONCE, 0, 5, 1, 2, 3, 4]);
    bytes[6..8].copy_from_slice(&(body_len + 7).to_be_bytes());
    assert!(matches!(
        Claims::from_bytes(&bytes),
        Err(Error::Truncated {
            subject: Subject::Claims,
            needed: 5,
            available: 4
        })
    ));
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = full().to_bytes();
    bytes.push(0);
    assert!(matches!(
        Claims::from_bytes(&bytes),
        Err(Error::TrailingBytes {
            subject: Subject::Claims,
            count: 1
        })
    ));
}

#[test]
fn wrong_magic_is_rejected() {
    let mut bytes = full().to_bytes();
    bytes[0] = b'X';
    assert_eq!(defect(&bytes), ClaimsDefect::BadMagic);
}

#[test]
fn other_versions_are_rejected() {
    for version in [0u16, 2, 0x0100, u16::MAX] {
        let mut bytes = full().to_bytes();
        bytes[4..6].copy_from_slice(&version.to_be_bytes());
        assert_eq!(
            Claims::from_bytes(&bytes).unwrap_err(),
            Error::UnsupportedClaimsVersion(version)
        );
    }
}

#[test]
fn unknown_fields_are_rejected() {
    let mut f = fields(&full().to_bytes());
    f.push((11, vec![0]));
    assert_eq!(
        defect(&assemble(&f)),
        ClaimsDefect::UnknownField { tag: 11 }
    );
    // Tag 0 is reserved: it is below every defined tag, so it is unknown, not out of order.
    let mut f = fields(&full().to_bytes());
    f.insert(0, (0, vec![]));
    assert_eq!(defect(&assemble(&f)), ClaimsDefect::UnknownField { tag: 0 });
}

#[test]
fn duplicate_fields_are_rejected() {
    let mut f = fields(&minimal().to_bytes());
    let model = f[2].clone();
    f.insert(3, model);
    assert_eq!(
        defect(&assemble(&f)),
        ClaimsDefect::DuplicateField {
            tag: tag::MODEL_BLAKE3
        }
    );
}

#[test]
fn out_of_order_fields_are_rejected() {
    let mut f = fields(&full().to_bytes());
    f.swap(0, 1);
    assert_eq!(
        defect(&assemble(&f)),
        ClaimsDefect::FieldOutOfOrder {
            tag: tag::PLATFORM,
            after: tag::TLS_SPKI_SHA256
        }
    );
}

#[test]
fn each_missing_required_field_is_named() {
    let all = fields(&minimal().to_bytes());
    let names = [
        (tag::PLATFORM, "platform"),
        (tag::TLS_SPKI_SHA256, "tls_spki_sha256"),
        (tag::MODEL_BLAKE3, "model_blake3"),
        (tag::CONFIG_DIGEST, "config_digest"),
        (tag::CREATED_AT, "created_at"),
        (tag::EXPIRES_AT, "expires_at"),
    ];
    for (t, name) in names {
        let f: Vec<_> = all.iter().filter(|(x, _)| *x != t).cloned().collect();
        assert_eq!(
            defect(&assemble(&f)),
            ClaimsDefect::MissingField { field: name }
        );
    }
}

#[test]
fn fixed_length_fields_of_another_length_are_rejected() {
    let all = fields(&full().to_bytes());
    for i in 0..all.len() {
        let (t, _) = all[i];
        if t == tag::HPKE_PUBLIC_KEY || t == tag::NONCE {
            continue;
        }
        for delta in [-1i32, 1] {
            let mut f = all.clone();
            if delta < 0 {
                f[i].1.pop();
            } else {
                f[i].1.push(0);
            }
            assert!(
                matches!(
                    defect(&assemble(&f)),
                    ClaimsDefect::FieldLength { length, min, max, .. }
                        if min == max && length as i32 == min as i32 + delta
                ),
                "tag {t} delta {delta}"
            );
        }
    }
}

#[test]
fn oversize_and_empty_nonces_are_rejected() {
    assert_eq!(
        Nonce::new(vec![0; MAX_NONCE_LEN + 1]).unwrap_err(),
        Error::ClaimsMalformed {
            defect: ClaimsDefect::FieldLength {
                field: "nonce",
                length: 65,
                min: 1,
                max: 64
            }
        }
    );
    assert!(Nonce::new(vec![0; MAX_NONCE_LEN]).is_ok());
    assert!(matches!(
        Nonce::new(vec![]),
        Err(Error::ClaimsMalformed {
            defect: ClaimsDefect::FieldLength { length: 0, .. }
        })
    ));

    for len in [0usize, MAX_NONCE_LEN + 1, 1000] {
        let mut f = fields(&full().to_bytes());
        f.last_mut().unwrap().1 = vec![7; len];
        assert_eq!(
            defect(&assemble(&f)),
            ClaimsDefect::FieldLength {
                field: "nonce",
                length: len,
                min: 1,
                max: MAX_NONCE_LEN
            }
        );
    }
}

#[test]
fn hpke_keys_without_key_bytes_or_too_long_are_rejected() {
    assert!(matches!(
        HpkePublicKey::new(0x20, vec![]),
        Err(Error::ClaimsMalformed {
            defect: ClaimsDefect::FieldLength {
                field: "hpke_public_key",
                ..
            }
        })
    ));
    assert!(HpkePublicKey::new(0x20, vec![0; MAX_HPKE_KEY_LEN]).is_ok());
    assert!(HpkePublicKey::new(0x20, vec![0; MAX_HPKE_KEY_LEN + 1]).is_err());
    for value in [vec![], vec![0, 0x20], vec![0; MAX_HPKE_KEY_LEN + 3]] {
        let mut f = fields(&full().to_bytes());
        f[2].1 = value.clone();
        assert!(
            matches!(
                defect(&assemble(&f)),
                ClaimsDefect::FieldLength {
                    field: "hpke_public_key",
                    ..
                }
            ),
            "{}",
            value.len()
        );
    }
}

#[test]
fn unknown_platform_codes_are_rejected() {
    let mut f = fields(&full().to_bytes());
    f[0].1 = vec![0x04];
    assert_eq!(defect(&assemble(&f)), ClaimsDefect::UnknownPlatform(0x04));
    for p in [
        ClaimsPlatform::Tdx,
        ClaimsPlatform::SevSnp,
        ClaimsPlatform::Sgx,
        ClaimsPlatform::SimulatedTdx,
        ClaimsPlatform::SimulatedSnp,
    ] {
        assert_eq!(ClaimsPlatform::from_code(p.code()).unwrap(), p);
        assert_eq!(p.is_simulated(), p.as_str().starts_with("sim-"));
    }
}

#[test]
fn oversize_input_is_rejected_before_parsing() {
    let mut bytes = full().to_bytes();
    bytes.resize(MAX_CLAIMS_SIZE + 1, 0);
    assert!(matches!(
        Claims::from_bytes(&bytes),
        Err(Error::InputTooLarge {
            subject: Subject::Claims,
            size: 4097,
            limit: MAX_CLAIMS_SIZE
        })
    ));
}

#[test]
fn largest_claims_fit_the_size_limit() {
    let mut c = full();
    c.hpke_public_key = Some(HpkePublicKey::new(1, vec![9; MAX_HPKE_KEY_LEN]).unwrap());
    c.nonce = Some(Nonce::new(vec![9; MAX_NONCE_LEN]).unwrap());
    let bytes = c.to_bytes();
    assert!(bytes.len() <= MAX_CLAIMS_SIZE, "{}", bytes.len());
    assert_eq!(Claims::from_bytes(&bytes).unwrap(), c);
}

#[test]
fn validity_window_is_inclusive_of_creation_and_exclusive_of_expiry() {
    let c = full();
    assert_eq!(
        c.check_time(c.created_at - 1),
        Err(Error::ClaimsNotYetValid {
            created_at: c.created_at,
            now: c.created_at - 1
        })
    );
    c.check_time(c.created_at).unwrap();
    c.check_time(c.expires_at - 1).unwrap();
    assert_eq!(
        c.check_time(c.expires_at),
        Err(Error::ClaimsExpired {
            expires_at: c.expires_at,
            now: c.expires_at
        })
    );
}

#[test]
fn claims_expiring_before_creation_are_never_valid() {
    let mut c = full();
    c.expires_at = c.created_at - 10;
    for now in [
        c.expires_at - 1,
        c.expires_at,
        c.created_at - 5,
        c.created_at,
    ] {
        assert!(
            matches!(
                c.check_time(now),
                Err(Error::ClaimsExpired { .. } | Error::ClaimsNotYetValid { .. })
            ),
            "{now}"
        );
    }
}

#[test]
fn nonce_must_match_exactly() {
    let c = full();
    c.check_nonce(&seq::<16>(0xa0)).unwrap();
    assert_eq!(c.check_nonce(&seq::<15>(0xa0)), Err(Error::NonceMismatch));
    assert_eq!(c.check_nonce(&seq::<16>(0xa1)), Err(Error::NonceMismatch));
    assert_eq!(
        minimal().check_nonce(&seq::<16>(0xa0)),
        Err(Error::NonceMismatch)
    );
}

#[test]
fn negative_times_round_trip() {
    let mut c = minimal();
    c.created_at = -5;
    c.expires_at = i64::MIN;
    assert_eq!(Claims::from_bytes(&c.to_bytes()).unwrap(), c);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parser_never_panics_and_accepts_only_canonical_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..400)
        ) {
            if let Ok(c) = Claims::from_bytes(&bytes) {
                prop_assert_eq!(c.to_bytes(), bytes);
            }
        }

        #[test]
        fn mutated_vectors_never_panic_and_stay_canonical(
            idx in 0usize..230, val in any::<u8>()
        ) {
            let mut bytes = full().to_bytes();
            let i = idx % bytes.len();
            bytes[i] = val;
            if let Ok(c) = Claims::from_bytes(&bytes) {
                prop_assert_eq!(c.to_bytes(), bytes);
            }
        }
    }
}

fn with_gpu(count: u8) -> Claims {
    Claims {
        gpu: Some(GpuCommitment {
            count,
            execution_provider: ExecutionProvider::Cuda,
        }),
        ..full()
    }
}

#[test]
fn a_gpu_commitment_round_trips_and_changes_report_data() {
    let claims = with_gpu(2);
    let bytes = claims.to_bytes();
    assert_eq!(Claims::from_bytes(&bytes).unwrap(), claims);
    // The GPU field comes last (tag 10): [count, provider].
    assert_eq!(&bytes[bytes.len() - 5..], &[10, 0, 2, 2, 1]);
    assert_ne!(claims.report_data(), full().report_data());
    assert_ne!(with_gpu(1).report_data(), with_gpu(2).report_data());
    let json = claims.to_json();
    assert_eq!(json["gpu"]["count"], 2);
    assert_eq!(json["gpu"]["execution_provider"], "cuda");
    assert!(claims.to_text().contains("2 GPU(s), inference on cuda"));
}

#[test]
fn gpu_nonces_differ_per_gpu_and_per_claims() {
    let claims = with_gpu(2);
    assert_ne!(claims.gpu_nonce(0), claims.gpu_nonce(1));
    let mut other = claims.clone();
    other.nonce = Some(Nonce::new(vec![1, 2, 3]).unwrap());
    assert_ne!(claims.gpu_nonce(0), other.gpu_nonce(0));
    // Recomputable by anyone: SHA-256(tag ‖ index ‖ canonical claims).
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"cocoon-gpu-nonce-v1\0");
    h.update([1u8]);
    h.update(claims.to_bytes());
    assert_eq!(claims.gpu_nonce(1), <[u8; 32]>::from(h.finalize()));
}

#[test]
fn bad_gpu_fields_are_refused() {
    let good = with_gpu(1).to_bytes();
    let mut f = fields(&good);
    let last = f.len() - 1;
    for (value, what) in [(vec![1u8], "short"), (vec![1u8, 1, 0], "long")] {
        f[last].1 = value;
        assert!(
            matches!(
                defect(&assemble(&f)),
                ClaimsDefect::FieldLength { field: "gpu", .. }
            ),
            "{what}"
        );
    }
    f[last].1 = vec![0, 1];
    assert_eq!(defect(&assemble(&f)), ClaimsDefect::GpuCount(0));
    f[last].1 = vec![MAX_GPUS + 1, 1];
    assert_eq!(defect(&assemble(&f)), ClaimsDefect::GpuCount(MAX_GPUS + 1));
    f[last].1 = vec![1, 9];
    assert_eq!(
        defect(&assemble(&f)),
        ClaimsDefect::UnknownExecutionProvider(9)
    );
}
