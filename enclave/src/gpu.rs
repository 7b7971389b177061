//! GPU evidence in the enclave's identity (docs/gpu.md): an [`Attester`] wrapper that adds GPU
//! attestation reports, each signing the SPDM nonce the claims derive for it
//! (`Claims::gpu_nonce`), so a verifier sees the GPUs bound to exactly this enclave instance.
//!
//! Modes: `off` (no GPU in the claims) and, with feature `sim`, `sim`: one simulated H100
//! (`cocoon_attestation::sim::gpu::SimGpu`, same report format as the hardware, signed by the
//! simulated NVIDIA root that only a `sim` verifier with `allow_simulated` accepts). Real GPUs
//! (NVML's confidential-computing attestation report) are not in this build: see docs/gpu.md.

use std::sync::Arc;

use cocoon_attestation::claims::ExecutionProvider;

use crate::{AttestError, Attester};

/// `attester` with the GPUs of `mode` (`off` | `sim`), inference running on `provider`. A GPU
/// execution provider needs attested GPUs: with `off` it is refused (inference never runs on a
/// GPU the claims do not cover).
pub fn with_gpu(
    attester: Arc<dyn Attester>,
    mode: &str,
    provider: ExecutionProvider,
) -> Result<Arc<dyn Attester>, AttestError> {
    match mode {
        "off" if provider != ExecutionProvider::Cpu => Err(AttestError::GpuUnavailable {
            reason: format!(
                "the {} execution provider runs on a GPU, and with --gpu off no GPU evidence \
                 would cover it",
                provider.as_str()
            ),
        }),
        "off" => Ok(attester),
        #[cfg(feature = "sim")]
        "sim" => Ok(Arc::new(SimGpuAttester::new(attester, provider)?)),
        #[cfg(not(feature = "sim"))]
        "sim" => Err(AttestError::SimulatedBackendNotBuilt),
        other => Err(AttestError::GpuUnavailable {
            reason: format!(
                "unknown GPU mode {other:?} (off, or sim in a build with feature `sim`; real \
                 GPUs are not attested by this build)"
            ),
        }),
    }
}

/// The inner attester plus one simulated H100.
#[cfg(feature = "sim")]
#[derive(Debug)]
pub struct SimGpuAttester {
    inner: Arc<dyn Attester>,
    gpu: cocoon_attestation::sim::gpu::SimGpu,
    provider: ExecutionProvider,
}

#[cfg(feature = "sim")]
impl SimGpuAttester {
    pub fn new(inner: Arc<dyn Attester>, provider: ExecutionProvider) -> Result<Self, AttestError> {
        Ok(Self {
            inner,
            gpu: cocoon_attestation::sim::gpu::SimGpu::new().map_err(AttestError::Simulated)?,
            provider,
        })
    }
}

#[cfg(feature = "sim")]
impl Attester for SimGpuAttester {
    fn platform(&self) -> cocoon_attestation::claims::ClaimsPlatform {
        self.inner.platform()
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<crate::Evidence, AttestError> {
        self.inner.attest(report_data)
    }

    fn gpu_commitment(&self) -> Option<cocoon_attestation::claims::GpuCommitment> {
        Some(cocoon_attestation::claims::GpuCommitment {
            count: 1,
            execution_provider: self.provider,
        })
    }

    fn attest_gpu(
        &self,
        index: u8,
        nonce: &[u8; 32],
    ) -> Result<cocoon_attestation::ratls::CarriedGpuEvidence, AttestError> {
        if index != 0 {
            return Err(AttestError::GpuUnavailable {
                reason: format!("the simulated GPU set has only GPU 0, not GPU {index}"),
            });
        }
        Ok(cocoon_attestation::ratls::CarriedGpuEvidence {
            report: self
                .gpu
                .try_report(*nonce)
                .map_err(AttestError::Simulated)?,
            certificates: self.gpu.chain_der(),
        })
    }
}

#[cfg(all(test, feature = "sim"))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::identity::{Identity, IdentityConfig};
    use cocoon_attestation::ratls::{
        RaTlsCertificate, RaTlsVerifier, StaticCollateral, VerifierConfig,
    };
    use cocoon_attestation::sim::SIM_NOW;

    fn verifier(policy: &str) -> RaTlsVerifier {
        let policy = cocoon_attestation::policy::Policy::from_toml(&format!(
            "version = 1\nallow_simulated = true\n{policy}"
        ))
        .unwrap();
        let collateral = cocoon_attestation::sim::tdx::SimTdx::new()
            .unwrap()
            .collateral()
            .unwrap();
        let mut config = VerifierConfig::new(policy);
        config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
        RaTlsVerifier::new(config).unwrap()
    }

    fn attester() -> Arc<dyn Attester> {
        let tdx: Arc<dyn Attester> = Arc::new(crate::sim::SimAttester::tdx().unwrap());
        with_gpu(tdx, "sim", ExecutionProvider::Cpu).unwrap()
    }

    #[test]
    fn the_identity_of_a_sim_gpu_enclave_carries_a_verifiable_bound_gpu_report() {
        let attester = attester();
        let identity =
            Identity::issue(attester.as_ref(), &IdentityConfig::default(), SIM_NOW).unwrap();
        let claims = identity.claims();
        assert_eq!(claims.gpu.map(|g| g.count), Some(1));
        let cert = RaTlsCertificate::parse(identity.certificate()).unwrap();
        assert_eq!(cert.gpu_evidence().len(), 1);
        let v = verifier("[gpu]\nrequired = true\narchitectures = [\"hopper\"]\n");
        let peer = v
            .verify_certificate(identity.certificate(), SIM_NOW)
            .unwrap();
        assert_eq!(peer.gpus.len(), 1);
        assert_eq!(peer.gpus[0].nonce, claims.gpu_nonce(0));

        let fresh = identity
            .fresh_attestation(attester.as_ref(), b"client-nonce")
            .unwrap();
        assert_eq!(fresh.gpus.len(), 1);
        let again = v
            .verify_fresh(&peer, &fresh, b"client-nonce", SIM_NOW)
            .unwrap();
        assert_ne!(
            again.gpus[0].nonce, peer.gpus[0].nonce,
            "a new report for the new nonce"
        );
    }

    #[test]
    fn gpu_modes_other_than_off_and_sim_are_refused() {
        let tdx: Arc<dyn Attester> = Arc::new(crate::sim::SimAttester::tdx().unwrap());
        assert!(matches!(
            with_gpu(Arc::clone(&tdx), "nvml", ExecutionProvider::Cpu),
            Err(AttestError::GpuUnavailable { .. })
        ));
        // CUDA inference without GPU evidence is refused.
        assert!(matches!(
            with_gpu(Arc::clone(&tdx), "off", ExecutionProvider::Cuda),
            Err(AttestError::GpuUnavailable { .. })
        ));
        let off = with_gpu(tdx, "off", ExecutionProvider::Cpu).unwrap();
        assert_eq!(off.gpu_commitment(), None);
    }
}

#[cfg(all(test, not(feature = "sim")))]
#[allow(clippy::unwrap_used)]
mod tests_without_sim {
    use super::*;

    #[derive(Debug)]
    struct NoTee;

    impl Attester for NoTee {
        fn platform(&self) -> cocoon_attestation::claims::ClaimsPlatform {
            cocoon_attestation::claims::ClaimsPlatform::Tdx
        }
        fn attest(&self, _: &[u8; 64]) -> Result<crate::Evidence, AttestError> {
            Err(AttestError::TdxQuoteUnavailable)
        }
    }

    #[test]
    fn a_build_without_sim_has_no_simulated_gpu() {
        assert!(matches!(
            with_gpu(Arc::new(NoTee), "sim", ExecutionProvider::Cpu),
            Err(AttestError::SimulatedBackendNotBuilt)
        ));
    }
}
