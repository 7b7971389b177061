//! `cocoon-verify cert`: the verified identity of an RA-TLS certificate, and the report shared
//! with `cocoon-verify endpoint`.

use cocoon_attestation::claims::Claims;
use cocoon_attestation::error::fmt_time;
use cocoon_attestation::ratls::{CertificateKind, RaTlsCertificate, RaTlsVerifier, VerifiedPeer};
use cocoon_attestation::Error;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The outcome of checking an RA-TLS certificate or a live endpoint.
#[derive(Debug, Clone)]
pub struct IdentityReport {
    /// What was checked: `certificate` or `endpoint`.
    pub subject: &'static str,
    /// The verification time (unix seconds).
    pub now: i64,
    /// The certificate parsed (its fields are shown, verified or not).
    pub certificate: Option<CertificateInfo>,
    /// The verified peer, when verification succeeded.
    pub peer: Option<std::sync::Arc<VerifiedPeer>>,
    /// Unverified claims from a certificate that failed verification.
    pub unverified_claims: Option<Claims>,
    /// Endpoint only: the address and, with `--nonce`, the fresh attestation's outcome.
    pub endpoint: Option<EndpointInfo>,
    /// Every reason for rejection.
    pub errors: Vec<Failure>,
}

/// One reason for rejection: an attestation [`Error`] (its kind and message) or a TLS failure
/// (kind `tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

/// The failures an error stands for: every policy failure of a policy refusal, else itself.
pub fn failures(error: Error) -> Vec<Failure> {
    match error {
        Error::PolicyRejected { failures } => failures.into_iter().map(Failure::from).collect(),
        other => vec![other.into()],
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self {
            kind: e.kind(),
            message: e.message(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub sha256: [u8; 32],
    pub spki_sha256: [u8; 32],
    pub not_before: i64,
    pub not_after: i64,
    pub size: usize,
}

#[derive(Debug, Clone)]
pub struct EndpointInfo {
    pub address: String,
    /// The nonce sent to `/v1/attestation`, when `--nonce` was given.
    pub nonce: Option<Vec<u8>>,
    /// The fresh attestation verified.
    pub fresh: bool,
}

impl IdentityReport {
    pub fn new(subject: &'static str, now: i64) -> Self {
        Self {
            subject,
            now,
            certificate: None,
            peer: None,
            unverified_claims: None,
            endpoint: None,
            errors: Vec::new(),
        }
    }

    /// Without `--trust-simulated-root` a simulated peer is refused even when the policy
    /// allows simulated evidence (the sim build's verifier knows the simulated roots).
    pub fn refuse_simulated_unless(&mut self, trusted: bool) {
        if !trusted && self.simulated() {
            self.errors.push(Error::SimulatedEvidenceNotAllowed.into());
        }
    }

    pub fn accepted(&self) -> bool {
        self.peer.is_some() && self.errors.is_empty()
    }

    pub fn verdict(&self) -> &'static str {
        if self.accepted() {
            "accepted"
        } else {
            "rejected"
        }
    }

    fn claims(&self) -> Option<&Claims> {
        self.peer
            .as_ref()
            .and_then(|p| p.claims.as_ref())
            .or(self.unverified_claims.as_ref())
    }

    fn platform(&self) -> Option<String> {
        self.peer
            .as_ref()
            .map(|p| p.platform.as_str().to_string())
            .or_else(|| self.claims().map(|c| c.platform.as_str().to_string()))
    }

    fn simulated(&self) -> bool {
        self.peer.as_ref().is_some_and(|p| p.simulated)
    }

    /// The JSON form, keys in a fixed order.
    pub fn to_json(&self) -> String {
        let peer = self.peer.as_deref();
        let json = JsonIdentity {
            verdict: self.verdict(),
            subject: self.subject,
            platform: self.platform(),
            verified: self.peer.is_some(),
            verification_time: self.now,
            simulated: self.simulated(),
            tcb_status: peer.and_then(|p| p.tcb_status.as_ref().map(|s| s.to_string())),
            advisory_ids: peer.map(|p| p.advisory_ids.clone()).unwrap_or_default(),
            errors: self
                .errors
                .iter()
                .map(|e| json!({"kind": e.kind, "message": e.message}))
                .collect(),
            measurements: peer.map(|p| p.measurements.clone()).unwrap_or_default(),
            gpus: peer
                .map(|p| p.gpus.iter().map(|g| g.claims_json()).collect())
                .unwrap_or_default(),
            claims: self.claims().map(Claims::to_json),
            claims_verified: self.peer.as_ref().is_some_and(|p| p.claims.is_some()),
            format: peer.map(|p| format_name(p.kind)),
            user_claims: peer.and_then(|p| p.user_claims.as_ref().map(hex::encode)),
            certificate: self.certificate.as_ref().map(|c| {
                json!({
                    "sha256": hex::encode(c.sha256),
                    "spki_sha256": hex::encode(c.spki_sha256),
                    "not_before": c.not_before,
                    "not_after": c.not_after,
                    "size": c.size,
                })
            }),
            endpoint: self.endpoint.as_ref().map(|e| {
                json!({
                    "address": e.address,
                    "nonce": e.nonce.as_ref().map(hex::encode),
                    "fresh": e.fresh,
                })
            }),
        };
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// The human-readable form: verdict first, then the certificate, claims, measurements and
    /// every failure.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        let verdict = if self.accepted() {
            "ACCEPTED"
        } else {
            "REJECTED"
        };
        let platform = self.platform().unwrap_or_else(|| "unknown platform".into());
        let simulated = if self.simulated() {
            " (SIMULATED TEE, NOT HARDWARE)"
        } else {
            ""
        };
        let what = match &self.endpoint {
            Some(e) => format!("RA-TLS endpoint {}", e.address),
            None => "RA-TLS certificate".to_string(),
        };
        let _ = writeln!(out, "{verdict}: {what}, {platform}{simulated}");
        let _ = writeln!(
            out,
            "verification time   {} ({})",
            fmt_time(self.now),
            self.now
        );
        if let Some(c) = &self.certificate {
            let _ = writeln!(out, "certificate sha256  {}", hex::encode(c.sha256));
            let _ = writeln!(out, "key (SPKI) sha256   {}", hex::encode(c.spki_sha256));
            let _ = writeln!(
                out,
                "valid               {} .. {}",
                fmt_time(c.not_before),
                fmt_time(c.not_after)
            );
        }
        if let Some(peer) = &self.peer {
            if peer.kind == CertificateKind::Cocoon {
                let _ = writeln!(out, "format              COCOON RA-TLS (no claims of ours)");
            }
            if let Some(user_claims) = &peer.user_claims {
                let _ = writeln!(out, "user claims         {}", hex::encode(user_claims));
            }
            if let Some(status) = &peer.tcb_status {
                let _ = writeln!(out, "TCB status          {status}");
            }
            let advisories = if peer.advisory_ids.is_empty() {
                "none".to_string()
            } else {
                peer.advisory_ids.join(", ")
            };
            let _ = writeln!(out, "advisories          {advisories}");
        }
        if let Some(e) = &self.endpoint {
            if let Some(nonce) = &e.nonce {
                let outcome = if e.fresh { "verified" } else { "NOT verified" };
                let _ = writeln!(
                    out,
                    "fresh attestation   {outcome} (nonce {})",
                    hex::encode(nonce)
                );
            }
        }
        if let Some(claims) = self.claims() {
            let heading = if self.peer.is_some() {
                "claims (verified)"
            } else {
                "claims (UNVERIFIED: do not trust these values)"
            };
            let _ = writeln!(out, "\n{heading}");
            write_claims(&mut out, claims);
        }
        if let Some(peer) = &self.peer {
            let _ = writeln!(out, "\nmeasurements (verified)");
            for (key, value) in &peer.measurements {
                let _ = writeln!(out, "  {key:<17} {value}");
            }
            if !peer.gpus.is_empty() {
                let _ = writeln!(out, "\ngpus (verified, bound to the claims)");
                out.push_str(&peer.gpus_text());
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nverification failed");
            for error in &self.errors {
                let _ = writeln!(out, "  - [{}] {}", error.kind, error.message);
            }
        }
        out
    }
}

fn write_claims(out: &mut String, claims: &Claims) {
    out.push_str(&claims.to_text());
}

#[derive(Serialize)]
struct JsonIdentity {
    verdict: &'static str,
    subject: &'static str,
    platform: Option<String>,
    verified: bool,
    verification_time: i64,
    simulated: bool,
    tcb_status: Option<String>,
    advisory_ids: Vec<String>,
    errors: Vec<Value>,
    measurements: BTreeMap<String, String>,
    /// The verified GPUs (NVIDIA claims shape); empty without GPU evidence.
    gpus: Vec<serde_json::Value>,
    claims: Option<Value>,
    claims_verified: bool,
    /// `ours` or `cocoon` (COCOON's format: a TDX quote and user claims, no claims of ours).
    format: Option<&'static str>,
    user_claims: Option<String>,
    certificate: Option<Value>,
    endpoint: Option<Value>,
}

fn format_name(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Ours => "ours",
        CertificateKind::Cocoon => "cocoon",
        CertificateKind::Detached => "detached",
    }
}

/// The certificate facts of a verified peer (for formats [`RaTlsCertificate`] does not parse).
pub fn peer_certificate_info(der: &[u8], peer: &VerifiedPeer) -> CertificateInfo {
    CertificateInfo {
        sha256: Sha256::digest(der).into(),
        spki_sha256: peer.spki_sha256,
        not_before: peer.not_before,
        not_after: peer.not_after,
        size: der.len(),
    }
}

/// What the certificate shows before verification.
pub fn certificate_info(der: &[u8]) -> Option<(CertificateInfo, Claims)> {
    let parsed = RaTlsCertificate::parse(der).ok()?;
    Some((
        CertificateInfo {
            sha256: Sha256::digest(der).into(),
            spki_sha256: parsed.spki_sha256(),
            not_before: parsed.not_before(),
            not_after: parsed.not_after(),
            size: der.len(),
        },
        parsed.claims().clone(),
    ))
}

/// Parses and verifies an RA-TLS certificate (DER) at `now`.
pub fn check(verifier: &RaTlsVerifier, der: &[u8], now: i64) -> IdentityReport {
    let mut report = IdentityReport::new("certificate", now);
    if let Some((info, claims)) = certificate_info(der) {
        report.certificate = Some(info);
        report.unverified_claims = Some(claims);
    }
    match verifier.verify_certificate(der, now) {
        Ok(peer) => {
            report.unverified_claims = None;
            if report.certificate.is_none() {
                report.certificate = Some(peer_certificate_info(der, &peer));
            }
            report.peer = Some(peer);
        }
        Err(e) => report.errors.extend(failures(e)),
    }
    report
}
