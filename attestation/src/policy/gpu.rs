//! The `[gpu]` section: requirements on verified NVIDIA GPU evidence ([`crate::gpu::VerifiedGpu`]),
//! evaluated by [`Policy::evaluate_gpus`](super::Policy::evaluate_gpus).
//!
//! ```toml
//! [gpu]
//! required = true                       # default false: no GPU evidence is then acceptable
//! architectures = ["hopper"]            # absent: any; empty: none
//! min_driver_version = "550.90.07"      # dotted, decimal components
//! min_vbios_version = "96.00.9f.00.01"  # dotted, hex components
//! measurements = { "2" = ["8048df…", "…"] }  # golden values per block index (alternatives)
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::invalid;
use crate::error::Error;
use crate::gpu::VerifiedGpu;

/// Requirements on GPUs. `None` = not checked; an empty list denies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GpuPolicy {
    /// At least one verified GPU must be presented.
    pub required: bool,
    /// Allowed architectures, lower case (`hopper`, `blackwell`).
    pub architectures: Option<BTreeSet<String>>,
    /// Lowest accepted driver version (dotted decimal).
    pub min_driver_version: Option<String>,
    /// Lowest accepted VBIOS version (dotted hex).
    pub min_vbios_version: Option<String>,
    /// Measurement block index → accepted values (any one of them).
    pub measurements: BTreeMap<u16, BTreeSet<Vec<u8>>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GpuFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_driver_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_vbios_version: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    measurements: BTreeMap<String, Vec<String>>,
}

const ARCHITECTURES: &[&str] = &["hopper", "blackwell"];
/// Longest measurement value accepted in a policy (bytes).
const MAX_MEASUREMENT_LEN: usize = 1024;

/// Parses a dotted version; components in `radix`.
fn version(text: &str, radix: u32) -> Option<Vec<u64>> {
    text.split('.')
        .map(|p| {
            if p.is_empty() {
                None
            } else {
                u64::from_str_radix(p, radix).ok()
            }
        })
        .collect()
}

/// Compares dotted versions component by component (missing components count as 0).
fn compare(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

impl GpuPolicy {
    pub(super) fn from_file(f: GpuFile) -> crate::Result<Self> {
        let architectures = f
            .architectures
            .map(|list| {
                list.into_iter()
                    .map(|a| {
                        let lower = a.to_ascii_lowercase();
                        if ARCHITECTURES.contains(&lower.as_str()) {
                            Ok(lower)
                        } else {
                            Err(invalid(format!(
                                "gpu.architectures: unknown architecture {a:?} (known: {})",
                                ARCHITECTURES.join(", ")
                            )))
                        }
                    })
                    .collect::<crate::Result<BTreeSet<_>>>()
            })
            .transpose()?;
        if let Some(v) = &f.min_driver_version {
            version(v, 10).ok_or_else(|| {
                invalid(format!(
                    "gpu.min_driver_version: {v:?} is not dotted decimal"
                ))
            })?;
        }
        if let Some(v) = &f.min_vbios_version {
            version(v, 16).ok_or_else(|| {
                invalid(format!("gpu.min_vbios_version: {v:?} is not dotted hex"))
            })?;
        }
        let mut measurements = BTreeMap::new();
        for (index, values) in f.measurements {
            let i: u16 = index.parse().map_err(|_| {
                invalid(format!(
                    "gpu.measurements: key {index:?} is not a block index (1..=255)"
                ))
            })?;
            if i == 0 || i > 255 {
                return Err(invalid(format!(
                    "gpu.measurements: block index {i} outside 1..=255"
                )));
            }
            let set = values
                .iter()
                .map(|v| {
                    let bytes = hex::decode(v).map_err(|e| {
                        invalid(format!("gpu.measurements.{i}: {v:?} is not hex ({e})"))
                    })?;
                    if bytes.is_empty() || bytes.len() > MAX_MEASUREMENT_LEN {
                        return Err(invalid(format!(
                            "gpu.measurements.{i}: value of {} bytes",
                            bytes.len()
                        )));
                    }
                    Ok(bytes)
                })
                .collect::<crate::Result<BTreeSet<_>>>()?;
            measurements.insert(i, set);
        }
        Ok(Self {
            required: f.required.unwrap_or_default(),
            architectures,
            min_driver_version: f.min_driver_version,
            min_vbios_version: f.min_vbios_version,
            measurements,
        })
    }

    pub(super) fn to_file(&self) -> GpuFile {
        GpuFile {
            required: Some(self.required),
            architectures: self
                .architectures
                .as_ref()
                .map(|s| s.iter().cloned().collect()),
            min_driver_version: self.min_driver_version.clone(),
            min_vbios_version: self.min_vbios_version.clone(),
            measurements: self
                .measurements
                .iter()
                .map(|(i, set)| (i.to_string(), set.iter().map(hex::encode).collect()))
                .collect(),
        }
    }

    /// Every check for every GPU, in order; failures are appended.
    pub(super) fn evaluate(&self, gpus: &[VerifiedGpu], failures: &mut Vec<Error>) {
        if self.required && gpus.is_empty() {
            failures.push(Error::GpuEvidenceRequired);
        }
        for (n, gpu) in gpus.iter().enumerate() {
            let mut fail = |reason: String| {
                failures.push(Error::GpuPolicyViolation { gpu: n, reason });
            };
            match &self.architectures {
                None => {}
                Some(list) if list.is_empty() => {
                    fail("gpu.architectures is empty: no architecture is allowed".into())
                }
                Some(list) if list.contains(gpu.arch.policy_name()) => {}
                Some(list) => fail(format!(
                    "architecture {} ({}) not in gpu.architectures {:?}",
                    gpu.arch.policy_name(),
                    gpu.leaf_common_name,
                    list
                )),
            }
            for (key, min, actual, radix) in [
                (
                    "min_driver_version",
                    &self.min_driver_version,
                    &gpu.driver_version,
                    10,
                ),
                (
                    "min_vbios_version",
                    &self.min_vbios_version,
                    &gpu.vbios_version,
                    16,
                ),
            ] {
                let Some(min) = min else { continue };
                match (version(actual, radix), version(min, radix)) {
                    (Some(a), Some(m)) if compare(&a, &m) != Ordering::Less => {}
                    (Some(_), Some(_)) => fail(format!(
                        "{} {actual} is below gpu.{key} {min}",
                        key.trim_start_matches("min_").replace('_', " ")
                    )),
                    _ => fail(format!(
                        "{} {actual:?} cannot be compared with gpu.{key} {min}",
                        key.trim_start_matches("min_").replace('_', " ")
                    )),
                }
            }
            for (index, allowed) in &self.measurements {
                match gpu.measurements.get(index) {
                    _ if allowed.is_empty() => fail(format!(
                        "gpu.measurements.{index} is empty: no value is allowed"
                    )),
                    None => fail(format!("measurement block {index} is absent")),
                    Some(v) if allowed.contains(v) => {}
                    Some(v) => fail(format!(
                        "measurement block {index} = {} is not an allowed value",
                        hex::encode(v)
                    )),
                }
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
    use crate::error::Error;
    use crate::gpu::{parse_pem_chain, verify, GpuTrustAnchors, VerifiedGpu};
    use crate::test_vectors;

    const M2: &str = "8048dfd18fe229bf16eb9d30cca0f11a24dafe6eb731de1462984645a0b189b77c4e4e17de727a5e19e3d07de51da338";

    fn h100() -> VerifiedGpu {
        let text = test_vectors::read("gpu/hopperAttestationReport.txt");
        let report = hex::decode(String::from_utf8(text).unwrap().trim()).unwrap();
        let chain =
            parse_pem_chain(&test_vectors::read("gpu/hopper_cert_chain_case1.txt")).unwrap();
        verify(
            &report,
            &chain,
            &GpuTrustAnchors::nvidia().unwrap(),
            None,
            1_767_225_600,
        )
        .unwrap()
    }

    fn policy(gpu_table: &str) -> Policy {
        Policy::from_toml(&format!("version = 1\n[gpu]\n{gpu_table}")).unwrap()
    }

    fn violations(p: &Policy, gpus: &[VerifiedGpu]) -> Vec<String> {
        p.evaluate_gpus(gpus)
            .failures
            .into_iter()
            .map(|e| match e {
                Error::GpuPolicyViolation { reason, .. } => reason,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    #[test]
    fn h100_vector_meets_a_policy_pinning_its_values() {
        let p = policy(&format!(
            "required = true\narchitectures = [\"hopper\"]\nmin_driver_version = \"550.90.07\"\n\
             min_vbios_version = \"96.00.9f.00.01\"\nmeasurements = {{ \"2\" = [\"00\", \"{M2}\"] }}\n"
        ));
        assert!(p.evaluate_gpus(&[h100()]).accepted());
    }

    #[test]
    fn newer_minimum_versions_reject_the_h100_vector() {
        let p = policy("min_driver_version = \"550.100\"\nmin_vbios_version = \"96.00.a0\"\n");
        let v = violations(&p, &[h100()]);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("driver version 550.90.07 is below"), "{v:?}");
        assert!(
            v[1].contains("vbios version 96.00.9f.00.01 is below"),
            "{v:?}"
        );
    }

    #[test]
    fn versions_compare_numerically_not_as_text() {
        // 550.90.07 ≥ 550.9 and ≥ 535.104.05 although "550.9" > "550.90" as text prefixes go.
        let p = policy("min_driver_version = \"535.104.05\"\n");
        assert!(p.evaluate_gpus(&[h100()]).accepted());
        let p = policy("min_driver_version = \"550.100.0\"\n");
        assert_eq!(violations(&p, &[h100()]).len(), 1);
    }

    #[test]
    fn wrong_or_absent_golden_measurement_is_rejected() {
        let p = policy(&format!(
            "measurements = {{ \"2\" = [\"{}\"], \"200\" = [\"{M2}\"] }}\n",
            "00".repeat(48)
        ));
        let v = violations(&p, &[h100()]);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("block 2 = 8048df"), "{v:?}");
        assert!(v[1].contains("block 200 is absent"), "{v:?}");
    }

    #[test]
    fn architecture_outside_the_list_or_an_empty_list_is_rejected() {
        let p = policy("architectures = [\"blackwell\"]\n");
        assert_eq!(violations(&p, &[h100()]).len(), 1);
        let p = policy("required = true\narchitectures = []\n");
        assert!(violations(&p, &[h100()])[0].contains("empty"));
    }

    #[test]
    fn required_gpu_without_evidence_is_rejected() {
        let p = policy("required = true\n");
        let d = p.evaluate_gpus(&[]);
        assert!(matches!(
            d.failures.as_slice(),
            [Error::GpuEvidenceRequired]
        ));
        assert!(policy("").evaluate_gpus(&[]).accepted());
        assert!(Policy::default().evaluate_gpus(&[]).accepted());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_policy_errors() {
        for table in [
            "requird = true\n",
            "architectures = [\"ampere\"]\n",
            "min_driver_version = \"550.x\"\n",
            "min_vbios_version = \"96..00\"\n",
            "measurements = { \"x\" = [\"00\"] }\n",
            "measurements = { \"0\" = [\"00\"] }\n",
            "measurements = { \"2\" = [\"zz\"] }\n",
        ] {
            let err = Policy::from_toml(&format!("version = 1\n[gpu]\n{table}")).unwrap_err();
            assert!(
                matches!(err, Error::PolicyInvalid { .. }),
                "{table}: {err:?}"
            );
        }
    }

    #[test]
    fn gpu_table_round_trips_through_canonical_toml() {
        let p = policy(&format!(
            "required = true\narchitectures = [\"Hopper\"]\nmeasurements = {{ \"2\" = [\"{}\"] }}\n",
            M2.to_uppercase()
        ));
        let again = Policy::from_toml(&p.to_toml().unwrap()).unwrap();
        assert_eq!(p, again);
        assert_ne!(p.digest(), Policy::default().digest());
    }

    #[cfg(feature = "sim")]
    #[test]
    fn simulated_gpu_needs_allow_simulated() {
        use crate::sim::{gpu::SimGpu, SIM_NOW};
        let sim = SimGpu::new().unwrap();
        let v = verify(
            &sim.report([0; 32]),
            &sim.chain_der(),
            &GpuTrustAnchors::with_simulated_root().unwrap(),
            None,
            SIM_NOW,
        )
        .unwrap();
        let d = Policy::default().evaluate_gpus(std::slice::from_ref(&v));
        assert!(matches!(
            d.failures.as_slice(),
            [Error::SimulatedEvidenceNotAllowed]
        ));
        let p = Policy::from_toml(
            "version = 1\nallow_simulated = true\n[gpu]\nrequired = true\n\
             architectures = [\"hopper\"]\nmin_driver_version = \"550\"\n",
        )
        .unwrap();
        assert!(p.evaluate_gpus(&[v]).accepted());
    }
}
