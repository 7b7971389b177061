//! The `[claims]` section: rules on the enclave's claims (`crate::claims::Claims`) — which
//! model and configuration are acceptable, whether an HPKE key must be offered, how long claims
//! may live. Evaluated by [`Policy::evaluate_claims`](super::Policy::evaluate_claims) on claims
//! that are already bound to verified evidence (`Claims::check_tdx` / `check_snp`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{check_hex_allowlist, hex_list, parse_hex_list};
use crate::claims::Claims;
use crate::error::Error;

/// Rules on the claims. Every `Option` allowlist: `None` = not checked, empty = deny.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimsPolicy {
    /// Allowed BLAKE3 digests of the model.
    pub model_blake3: Option<BTreeSet<[u8; 32]>>,
    /// Allowed dm-verity roots of the model volume; when set, claims without a root fail.
    pub model_dm_verity_root: Option<BTreeSet<[u8; 32]>>,
    /// Allowed digests of the measured configuration.
    pub config_digest: Option<BTreeSet<[u8; 32]>>,
    /// The claims must carry an HPKE public key (encrypted prompts). Default false.
    pub require_hpke_key: bool,
    /// Longest accepted `expires_at - created_at`, in seconds.
    pub max_claims_lifetime_secs: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClaimsFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_blake3: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_dm_verity_root: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config_digest: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    require_hpke_key: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_claims_lifetime_secs: Option<u32>,
}

impl ClaimsPolicy {
    pub(super) fn from_file(f: ClaimsFile) -> crate::Result<Self> {
        Ok(Self {
            model_blake3: parse_hex_list("claims.model_blake3", f.model_blake3)?,
            model_dm_verity_root: parse_hex_list(
                "claims.model_dm_verity_root",
                f.model_dm_verity_root,
            )?,
            config_digest: parse_hex_list("claims.config_digest", f.config_digest)?,
            require_hpke_key: f.require_hpke_key.unwrap_or_default(),
            max_claims_lifetime_secs: f.max_claims_lifetime_secs,
        })
    }

    pub(super) fn to_file(&self) -> ClaimsFile {
        ClaimsFile {
            model_blake3: hex_list(&self.model_blake3),
            model_dm_verity_root: hex_list(&self.model_dm_verity_root),
            config_digest: hex_list(&self.config_digest),
            require_hpke_key: Some(self.require_hpke_key),
            max_claims_lifetime_secs: self.max_claims_lifetime_secs,
        }
    }

    /// Every check, in the order of the keys; failures are appended.
    pub(super) fn evaluate(&self, claims: &Claims, failures: &mut Vec<Error>) {
        check_hex_allowlist(
            "claims.model_blake3",
            &self.model_blake3,
            &claims.model.blake3,
            failures,
        );
        match (&self.model_dm_verity_root, &claims.model.dm_verity_root) {
            (Some(list), None) if !list.is_empty() => failures.push(Error::RequiredClaimAbsent {
                field: "claims.model_dm_verity_root",
            }),
            (list, root) => {
                // An empty list denies with or without a root; a root is checked when listed.
                let root = root.unwrap_or([0; 32]);
                check_hex_allowlist("claims.model_dm_verity_root", list, &root, failures);
            }
        }
        check_hex_allowlist(
            "claims.config_digest",
            &self.config_digest,
            &claims.config_digest,
            failures,
        );
        if self.require_hpke_key && claims.hpke_public_key.is_none() {
            failures.push(Error::RequiredClaimAbsent {
                field: "claims.require_hpke_key",
            });
        }
        if let Some(max) = self.max_claims_lifetime_secs {
            let lifetime =
                i128::from(claims.expires_at).saturating_sub(i128::from(claims.created_at));
            if lifetime > i128::from(max) {
                failures.push(Error::AboveMaximum {
                    field: "claims.max_claims_lifetime_secs",
                    maximum: max.to_string(),
                    actual: lifetime.to_string(),
                });
            }
        }
    }
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
    use super::super::Policy;
    use super::*;
    use crate::claims::{ClaimsPlatform, HpkePublicKey, ModelIdentity};

    fn seq<const N: usize>(start: u8) -> [u8; N] {
        std::array::from_fn(|i| start.wrapping_add(i as u8))
    }

    /// The claims of `tests/data/claims/v1-full.bin` (its README lists the values).
    fn full() -> Claims {
        Claims::from_bytes(&std::fs::read(data("v1-full.bin")).unwrap()).unwrap()
    }

    /// The claims of `tests/data/claims/v1-minimal.bin`: no HPKE key, no dm-verity root.
    fn minimal() -> Claims {
        Claims::from_bytes(&std::fs::read(data("v1-minimal.bin")).unwrap()).unwrap()
    }

    fn data(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/claims")
            .join(name)
    }

    fn h<const N: usize>(v: [u8; N]) -> String {
        hex::encode(v)
    }

    /// A policy pinning every value of `full()`.
    fn pinned() -> String {
        format!(
            "version = 1\n[claims]\nmodel_blake3 = [\"{}\"]\nmodel_dm_verity_root = [\"{}\"]\n\
             config_digest = [\"{}\"]\nrequire_hpke_key = true\nmax_claims_lifetime_secs = 86400\n",
            h(seq::<32>(0x40)),
            h(seq::<32>(0x60)),
            h(seq::<32>(0x80)),
        )
    }

    fn policy(text: &str) -> Policy {
        Policy::from_toml(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn failures(text: &str, claims: &Claims) -> Vec<Error> {
        policy(text).evaluate_claims(claims).failures
    }

    #[test]
    fn the_claims_vectors_match_their_readme() {
        let c = full();
        assert_eq!(c.platform, ClaimsPlatform::Tdx);
        assert_eq!(c.model.blake3, seq(0x40));
        assert_eq!(c.model.dm_verity_root, Some(seq(0x60)));
        assert_eq!(c.config_digest, seq(0x80));
        assert!(c.hpke_public_key.is_some());
        assert_eq!(c.expires_at - c.created_at, 86_400);
        let m = minimal();
        assert!(m.hpke_public_key.is_none() && m.model.dm_verity_root.is_none());
    }

    #[test]
    fn policy_pinning_every_claim_accepts_those_claims() {
        assert_eq!(failures(&pinned(), &full()), vec![]);
    }

    #[test]
    fn policy_without_claims_section_checks_nothing() {
        let p = Policy::default();
        assert!(p.claims().is_none());
        assert!(p.evaluate_claims(&full()).accepted());
        assert!(p.evaluate_claims(&minimal()).accepted());
    }

    #[test]
    fn absent_keys_are_not_checked() {
        let mut c = full();
        c.model.blake3 = [0xee; 32];
        c.model.dm_verity_root = None;
        c.config_digest = [0xdd; 32];
        c.hpke_public_key = None;
        c.expires_at = i64::MAX;
        c.created_at = i64::MIN;
        assert_eq!(failures("version = 1\n[claims]\n", &c), vec![]);
    }

    #[test]
    fn model_blake3_not_in_allowlist_is_reported() {
        let mut c = full();
        c.model.blake3[31] ^= 1;
        assert_eq!(
            failures(&pinned(), &c),
            vec![Error::MeasurementNotAllowed {
                field: "claims.model_blake3",
                actual: hex::encode(c.model.blake3),
            }]
        );
    }

    #[test]
    fn dm_verity_root_not_in_allowlist_is_reported() {
        let mut c = full();
        c.model.dm_verity_root = Some([0x66; 32]);
        assert_eq!(
            failures(&pinned(), &c),
            vec![Error::MeasurementNotAllowed {
                field: "claims.model_dm_verity_root",
                actual: "66".repeat(32),
            }]
        );
    }

    #[test]
    fn missing_dm_verity_root_is_reported_when_roots_are_listed() {
        let mut c = full();
        c.model.dm_verity_root = None;
        assert_eq!(
            failures(&pinned(), &c),
            vec![Error::RequiredClaimAbsent {
                field: "claims.model_dm_verity_root"
            }]
        );
    }

    #[test]
    fn config_digest_not_in_allowlist_is_reported() {
        let mut c = full();
        c.config_digest = [0; 32];
        assert_eq!(
            failures(&pinned(), &c),
            vec![Error::MeasurementNotAllowed {
                field: "claims.config_digest",
                actual: "00".repeat(32),
            }]
        );
    }

    #[test]
    fn missing_hpke_key_is_reported_when_required() {
        let mut c = full();
        c.hpke_public_key = None;
        assert_eq!(
            failures(&pinned(), &c),
            vec![Error::RequiredClaimAbsent {
                field: "claims.require_hpke_key"
            }]
        );
        // Not required (the default): no failure.
        assert_eq!(failures("version = 1\n[claims]\n", &c), vec![]);
        assert_eq!(
            failures("version = 1\n[claims]\nrequire_hpke_key = false\n", &c),
            vec![]
        );
    }

    #[test]
    fn any_hpke_key_satisfies_require_hpke_key() {
        let mut c = full();
        c.hpke_public_key = Some(HpkePublicKey::new(0x0010, vec![4; 65]).unwrap());
        assert_eq!(failures(&pinned(), &c), vec![]);
    }

    #[test]
    fn lifetime_above_the_maximum_is_reported_and_the_maximum_itself_passes() {
        let mut c = full();
        c.expires_at = c.created_at + 86_400;
        assert_eq!(failures(&pinned(), &c), vec![]);
        c.expires_at += 1;
        assert_eq!(
            failures(&pinned(), &c),
            vec![Error::AboveMaximum {
                field: "claims.max_claims_lifetime_secs",
                maximum: "86400".into(),
                actual: "86401".into(),
            }]
        );
    }

    #[test]
    fn extreme_times_do_not_overflow_the_lifetime() {
        let mut c = full();
        c.created_at = i64::MIN;
        c.expires_at = i64::MAX;
        let f = failures(&pinned(), &c);
        assert!(
            matches!(&f[..], [Error::AboveMaximum { actual, .. }] if *actual == "18446744073709551615"),
            "{f:?}"
        );
        // expires before created: a non-positive lifetime is not above any maximum (the time
        // check, `Claims::check_time`, refuses such claims).
        c.created_at = 10;
        c.expires_at = 5;
        assert_eq!(failures(&pinned(), &c), vec![]);
    }

    #[test]
    fn empty_allowlists_deny_even_matching_claims() {
        for key in ["model_blake3", "model_dm_verity_root", "config_digest"] {
            let text = format!("version = 1\n[claims]\n{key} = []\n");
            for c in [full(), minimal()] {
                let f = failures(&text, &c);
                assert_eq!(f.len(), 1, "{key}: {f:?}");
                assert!(
                    matches!(&f[0], Error::EmptyAllowlist { field } if *field == format!("claims.{key}")),
                    "{key}: {f:?}"
                );
            }
        }
    }

    #[test]
    fn every_failure_is_listed_in_key_order() {
        let c = Claims {
            platform: ClaimsPlatform::SimulatedTdx,
            tls_spki_sha256: [0; 32],
            hpke_public_key: None,
            model: ModelIdentity {
                blake3: [1; 32],
                dm_verity_root: None,
            },
            config_digest: [2; 32],
            created_at: 0,
            expires_at: 1_000_000,
            nonce: None,
            gpu: None,
        };
        assert_eq!(
            failures(&pinned(), &c),
            vec![
                Error::MeasurementNotAllowed {
                    field: "claims.model_blake3",
                    actual: "01".repeat(32),
                },
                Error::RequiredClaimAbsent {
                    field: "claims.model_dm_verity_root"
                },
                Error::MeasurementNotAllowed {
                    field: "claims.config_digest",
                    actual: "02".repeat(32),
                },
                Error::RequiredClaimAbsent {
                    field: "claims.require_hpke_key"
                },
                Error::AboveMaximum {
                    field: "claims.max_claims_lifetime_secs",
                    maximum: "86400".into(),
                    actual: "1000000".into(),
                },
            ]
        );
        // The minimal vector misses the dm-verity root and the HPKE key; its lifetime is 1 h.
        assert_eq!(
            failures(&pinned(), &minimal()),
            vec![
                Error::RequiredClaimAbsent {
                    field: "claims.model_dm_verity_root"
                },
                Error::RequiredClaimAbsent {
                    field: "claims.require_hpke_key"
                },
            ]
        );
    }

    #[test]
    fn claims_section_round_trips_through_canonical_toml() {
        let text = format!(
            "version = 1\n[claims]\nmodel_blake3 = [\"{}\", \"{}\", \"{}\"]\nconfig_digest = []\n",
            "BB".repeat(32),
            "aa".repeat(32),
            "bb".repeat(32),
        );
        let p = policy(&text);
        let canonical = p.to_toml().unwrap();
        assert!(
            canonical.contains(&format!(
                "model_blake3 = [\"{}\", \"{}\"]",
                "aa".repeat(32),
                "bb".repeat(32)
            )),
            "{canonical}"
        );
        assert!(
            canonical.contains("require_hpke_key = false"),
            "{canonical}"
        );
        assert_eq!(policy(&canonical), p);
        assert_eq!(policy(&canonical).digest(), p.digest());
        let pinned = policy(&pinned());
        assert_eq!(policy(&pinned.to_toml().unwrap()), pinned);
    }

    #[test]
    fn claims_rules_are_part_of_the_digest() {
        let texts = [
            "version = 1".to_string(),
            "version = 1\n[claims]\n".into(),
            "version = 1\n[claims]\nrequire_hpke_key = true\n".into(),
            "version = 1\n[claims]\nmax_claims_lifetime_secs = 3600\n".into(),
            "version = 1\n[claims]\nmax_claims_lifetime_secs = 3601\n".into(),
            "version = 1\n[claims]\nmodel_blake3 = []\n".into(),
            "version = 1\n[claims]\nmodel_dm_verity_root = []\n".into(),
            "version = 1\n[claims]\nconfig_digest = []\n".into(),
            format!(
                "version = 1\n[claims]\nmodel_blake3 = [\"{}\"]\n",
                "aa".repeat(32)
            ),
            format!(
                "version = 1\n[claims]\nmodel_blake3 = [\"{}\"]\n",
                "ab".repeat(32)
            ),
            pinned(),
        ];
        let digests: BTreeSet<[u8; 32]> = texts.iter().map(|t| policy(t).digest()).collect();
        assert_eq!(digests.len(), texts.len());
        // Spelling out the default changes nothing.
        assert_eq!(
            policy("version = 1\n[claims]\n").digest(),
            policy("version = 1\n[claims]\nrequire_hpke_key = false\n").digest()
        );
    }

    #[test]
    fn claims_section_is_not_a_platform_section() {
        // A policy with only [claims] still accepts every platform under its default checks.
        let p = policy("version = 1\n[claims]\nrequire_hpke_key = true\n");
        assert!(p.tdx().is_none() && p.sgx().is_none() && p.snp().is_none());
        assert_eq!(p.claims().map(|c| c.require_hpke_key), Some(true));
    }

    #[test]
    fn malformed_claims_rules_are_policy_invalid() {
        for (text, needle) in [
            ("model_blake3 = [\"zz\"]", "claims.model_blake3[0]"),
            ("model_blake3 = [\"aabb\"]", "claims.model_blake3[0]"),
            ("config_digest = [\"aa\"]", "claims.config_digest[0]"),
            (
                "model_dm_verity_root = [\"aa\"]",
                "claims.model_dm_verity_root[0]",
            ),
            ("max_claims_lifetime_secs = -1", "max_claims_lifetime_secs"),
            ("require_hpke_key = 1", "require_hpke_key"),
            ("model_blake = []", "model_blake"),
        ] {
            let err = Policy::from_toml(&format!("version = 1\n[claims]\n{text}\n")).unwrap_err();
            assert!(
                matches!(&err, Error::PolicyInvalid { reason } if reason.contains(needle)),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    // The only way other crates can build a `non_exhaustive` section: default, then assign.
    #[allow(clippy::field_reassign_with_default)]
    fn programmatic_claims_policy_equals_parsed_policy() {
        let mut rules = ClaimsPolicy::default();
        rules.model_blake3 = Some(BTreeSet::from([seq(0x40)]));
        rules.require_hpke_key = true;
        let built = Policy::default().with_claims(Some(rules));
        let parsed = policy(&format!(
            "version = 1\n[claims]\nmodel_blake3 = [\"{}\"]\nrequire_hpke_key = true\n",
            h(seq::<32>(0x40))
        ));
        assert_eq!(built, parsed);
        assert_eq!(built.digest(), parsed.digest());
    }

    #[test]
    fn documented_claims_example_accepts_the_full_vector_and_lists_what_minimal_lacks() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/claims.toml");
        let p = policy(&std::fs::read_to_string(path).unwrap());
        assert!(p.claims().is_some());
        assert!(p.evaluate_claims(&full()).accepted());
        assert_eq!(
            p.evaluate_claims(&minimal()).failures,
            vec![
                Error::RequiredClaimAbsent {
                    field: "claims.model_dm_verity_root"
                },
                Error::RequiredClaimAbsent {
                    field: "claims.require_hpke_key"
                },
            ]
        );
    }
}
