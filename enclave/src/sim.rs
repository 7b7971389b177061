//! The simulated TEE as an attester (feature `sim`): evidence in the real formats, signed by
//! the TEST keys of `cocoon_attestation::sim`. NOT HARDWARE — a verifier accepts it only with
//! the simulated roots and a policy that allows them.

use cocoon_attestation::sim::snp::{self as sim_snp, SimSnp, SimSnpReport};
use cocoon_attestation::sim::tdx::{SimTdReport, SimTdx};

use crate::certtable::{SnpCertKind, SnpCertificate};
use crate::error::AttestError;
use crate::{Attester, ClaimsPlatform, Evidence, EvidenceKind};

#[derive(Debug, Clone)]
enum Inner {
    Tdx(Box<SimTdx>, SimTdReport),
    Snp(Box<SimSnp>, SimSnpReport),
}

/// Evidence from the simulated TEE.
#[derive(Debug, Clone)]
pub struct SimAttester {
    inner: Inner,
}

impl SimAttester {
    /// A simulated TD with the default (production-like) TD report fields.
    pub fn tdx() -> Result<Self, AttestError> {
        Self::tdx_with(SimTdReport::default())
    }

    /// A simulated TD with the given TD report fields (REPORTDATA is replaced per request).
    pub fn tdx_with(td: SimTdReport) -> Result<Self, AttestError> {
        let sim = SimTdx::new().map_err(AttestError::Simulated)?;
        Ok(Self {
            inner: Inner::Tdx(Box::new(sim), td),
        })
    }

    /// A simulated SNP guest with the default report fields.
    pub fn snp() -> Result<Self, AttestError> {
        Self::snp_with(SimSnpReport::default())
    }

    /// A simulated SNP guest with the given report fields (REPORT_DATA is replaced per request).
    pub fn snp_with(params: SimSnpReport) -> Result<Self, AttestError> {
        let sim = SimSnp::new().map_err(AttestError::Simulated)?;
        Ok(Self {
            inner: Inner::Snp(Box::new(sim), params),
        })
    }
}

impl Attester for SimAttester {
    fn platform(&self) -> ClaimsPlatform {
        match self.inner {
            Inner::Tdx(..) => ClaimsPlatform::SimulatedTdx,
            Inner::Snp(..) => ClaimsPlatform::SimulatedSnp,
        }
    }

    fn attest(&self, report_data: &[u8; 64]) -> Result<Evidence, AttestError> {
        match &self.inner {
            Inner::Tdx(sim, td) => {
                let quote = sim
                    .issue_quote(&td.clone().report_data(*report_data))
                    .map_err(AttestError::Simulated)?;
                Ok(Evidence {
                    platform: ClaimsPlatform::SimulatedTdx,
                    kind: EvidenceKind::TdxQuote,
                    bytes: quote,
                    certificates: Vec::new(),
                })
            }
            Inner::Snp(sim, params) => {
                let report = sim
                    .issue_report(&params.clone().report_data(*report_data))
                    .map_err(AttestError::Simulated)?;
                // As a host with an installed certificate table would supply them.
                let certificates = vec![
                    SnpCertificate {
                        kind: SnpCertKind::Vcek,
                        der: sim.vcek_der().to_vec(),
                    },
                    SnpCertificate {
                        kind: SnpCertKind::Ask,
                        der: sim_snp::ask_der().to_vec(),
                    },
                    SnpCertificate {
                        kind: SnpCertKind::Ark,
                        der: sim_snp::ark_der().to_vec(),
                    },
                ];
                Ok(Evidence {
                    platform: ClaimsPlatform::SimulatedSnp,
                    kind: EvidenceKind::SnpReport,
                    bytes: report,
                    certificates,
                })
            }
        }
    }
}
