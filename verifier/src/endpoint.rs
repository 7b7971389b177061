//! `cocoon-verify endpoint`: connects to a live RA-TLS server, verifies it during the
//! handshake and, with `--nonce`, asks it for a fresh attestation over the same connection.

use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::ratls::RaTlsVerifier;
use cocoon_client::{fresh_attestation, random_nonce, ClientError, Connector, Timeouts};

use crate::cert::{
    certificate_info, failures, peer_certificate_info, EndpointInfo, Failure, IdentityReport,
};
use crate::BadInput;

/// Connects to `address` and verifies it at the current time. Network failures (no
/// connection, timeouts) are bad input (exit 2); a refused attestation or TLS failure is a
/// rejected report.
pub fn check(
    verifier: Arc<RaTlsVerifier>,
    address: &str,
    nonce: bool,
    timeout: Duration,
    now: i64,
) -> Result<IdentityReport, BadInput> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| BadInput(format!("starting the runtime: {e}")))?;
    runtime.block_on(check_async(verifier, address, nonce, timeout, now))
}

async fn check_async(
    verifier: Arc<RaTlsVerifier>,
    address: &str,
    nonce: bool,
    timeout: Duration,
    now: i64,
) -> Result<IdentityReport, BadInput> {
    let mut report = IdentityReport::new("endpoint", now);
    let nonce = if nonce {
        Some(
            random_nonce()
                .map_err(|e| BadInput(e.to_string()))?
                .to_vec(),
        )
    } else {
        None
    };
    report.endpoint = Some(EndpointInfo {
        address: address.to_owned(),
        nonce: nonce.clone(),
        fresh: false,
    });
    let timeouts = Timeouts {
        connect: timeout,
        handshake: timeout,
        request: timeout,
    };
    let connector = Connector::new(verifier, None).map_err(|e| BadInput(e.to_string()))?;
    let mut conn = match connector.connect(address, timeouts).await {
        Ok(conn) => conn,
        Err(e) => return refused(report, e),
    };
    let peer = Arc::clone(conn.peer());
    if let Some(der) = conn.peer_certificate_der() {
        report.certificate = Some(match certificate_info(der) {
            Some((info, _)) => info,
            None => peer_certificate_info(der, &peer),
        });
    }
    report.peer = Some(Arc::clone(conn.peer()));
    if let Some(nonce) = &nonce {
        match fresh_attestation(&mut conn, nonce).await {
            Ok(fresh) => {
                report.peer = Some(fresh);
                if let Some(endpoint) = report.endpoint.as_mut() {
                    endpoint.fresh = true;
                }
            }
            Err(e) => return refused(report, e),
        }
    }
    Ok(report)
}

/// A failure after which the report is "rejected" (the peer was checked and failed) or the
/// check could not run (exit 2).
fn refused(mut report: IdentityReport, error: ClientError) -> Result<IdentityReport, BadInput> {
    match error {
        ClientError::Attestation(e) => {
            report.errors.extend(failures(e));
            Ok(report)
        }
        ClientError::Tls(e) => {
            report.errors.push(Failure {
                kind: "tls".into(),
                message: e.to_string(),
            });
            Ok(report)
        }
        other => Err(BadInput(format!("{other}"))),
    }
}
