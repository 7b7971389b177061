//! The client side of the simulated TEE for the examples: a connector whose verifier trusts the
//! simulated roots (policy `allow_simulated = true`, the simulated TDX collateral).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::{RaTlsVerifier, StaticCollateral, VerifierConfig};
use cocoon_attestation::sim::tdx::SimTdx;
use cocoon_client::Connector;

pub fn sim_connector() -> Connector {
    let policy = Policy::from_toml("version = 1\nallow_simulated = true\n").unwrap();
    let mut config = VerifierConfig::new(policy);
    let collateral = SimTdx::new().unwrap().collateral().unwrap();
    config.collateral = Some(Arc::new(StaticCollateral::new(vec![collateral]).unwrap()));
    Connector::new(Arc::new(RaTlsVerifier::new(config).unwrap()), None).unwrap()
}
