//! rustls 0.23 integration (ring provider): certificate verifiers that run
//! [`RaTlsVerifier::verify_certificate`] on the peer's certificate, and configurations that
//! allow only TLS 1.3 without tickets, resumption or 0-RTT.
//!
//! The server name is NOT matched against the certificate's SANs: the peer's identity is what
//! its attested claims say (measurements, model, keys), checked by the policy; a name in a
//! self-signed certificate proves nothing. Applications read the verified claims with
//! [`peer_of`] after the handshake.
//!
//! A failed verification is `rustls::Error::InvalidCertificate(CertificateError::Other(..))`
//! wrapping the [`crate::Error`]; [`attestation_error`] gets it back.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::ResolvesClientCert;
use rustls::crypto::{
    verify_tls13_signature_with_raw_key, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ResolvesServerCert};
use rustls::time_provider::{DefaultTimeProvider, TimeProvider};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use super::verify::{RaTlsVerifier, VerifiedPeer};
use crate::error::{Error, Result};

/// The ring provider with only the TLS 1.3 cipher suites.
fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|s| s.version() == &rustls::version::TLS13);
    Arc::new(provider)
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Our key types: ECDSA P-256 with SHA-256 and Ed25519.
const SCHEMES: [SignatureScheme; 2] = [
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ED25519,
];

fn to_rustls(e: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// The attestation error inside a rustls error made by these verifiers, if any.
pub fn attestation_error(e: &rustls::Error) -> Option<&Error> {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<Error>()
        }
        _ => None,
    }
}

fn unix(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// Shared by both verifiers.
#[derive(Debug)]
struct Core {
    verifier: Arc<RaTlsVerifier>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Core {
    fn new(verifier: Arc<RaTlsVerifier>) -> Self {
        Self {
            verifier,
            algorithms: algorithms(),
        }
    }

    fn verify_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(to_rustls(Error::CertificateChainTooLong {
                intermediates: intermediates.len(),
            }));
        }
        self.verifier
            .verify_certificate(end_entity.as_ref(), unix(now))
            .map(|_| ())
            .map_err(to_rustls)
    }

    /// The handshake signature with the certificate's key. The certificate was verified
    /// (and parsed) before this is called; rustls/webpki cannot parse certificates with our
    /// critical extensions, so the key is taken from the SubjectPublicKeyInfo directly.
    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        if !SCHEMES.contains(&dss.scheme) {
            return Err(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::NoSignatureSchemesInCommon,
            ));
        }
        let spki = super::parse::spki_of(cert.as_ref()).map_err(to_rustls)?;
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki.as_slice()),
            dss,
            &self.algorithms,
        )
    }
}

/// Verifies a server's RA-TLS certificate (client side).
#[derive(Debug)]
pub struct RaTlsServerCertVerifier {
    core: Core,
}

impl RaTlsServerCertVerifier {
    pub fn new(verifier: Arc<RaTlsVerifier>) -> Self {
        Self {
            core: Core::new(verifier),
        }
    }

    pub fn verifier(&self) -> &Arc<RaTlsVerifier> {
        &self.core.verifier
    }
}

impl ServerCertVerifier for RaTlsServerCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.core.verify_cert(end_entity, intermediates, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("RA-TLS requires TLS 1.3".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }

    fn requires_raw_public_keys(&self) -> bool {
        false
    }
}

/// Verifies a client's RA-TLS certificate (server side, mutual mode); a client certificate
/// is mandatory.
#[derive(Debug)]
pub struct RaTlsClientCertVerifier {
    core: Core,
}

impl RaTlsClientCertVerifier {
    pub fn new(verifier: Arc<RaTlsVerifier>) -> Self {
        Self {
            core: Core::new(verifier),
        }
    }

    pub fn verifier(&self) -> &Arc<RaTlsVerifier> {
        &self.core.verifier
    }
}

impl ClientCertVerifier for RaTlsClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.core.verify_cert(end_entity, intermediates, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("RA-TLS requires TLS 1.3".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }

    fn requires_raw_public_keys(&self) -> bool {
        false
    }
}

fn config_error(e: rustls::Error) -> Error {
    Error::PolicyInvalid {
        reason: format!("TLS configuration: {e}"),
    }
}

/// A client configuration that verifies the server's RA-TLS certificate with `verifier`;
/// `client_cert` presents our own certificate (mutual mode). TLS 1.3 only, resumption
/// disabled, no early data. Times come from the system clock (see
/// [`client_config_with_time_provider`]).
pub fn client_config(
    verifier: Arc<RaTlsVerifier>,
    client_cert: Option<Arc<dyn ResolvesClientCert>>,
) -> Result<rustls::ClientConfig> {
    client_config_with_time_provider(verifier, client_cert, Arc::new(DefaultTimeProvider))
}

/// As [`client_config`], with the clock given (tests pin it to the evidence's validity).
pub fn client_config_with_time_provider(
    verifier: Arc<RaTlsVerifier>,
    client_cert: Option<Arc<dyn ResolvesClientCert>>,
    time_provider: Arc<dyn TimeProvider>,
) -> Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_details(provider(), time_provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RaTlsServerCertVerifier::new(verifier)));
    let mut config = match client_cert {
        Some(resolver) => builder.with_client_cert_resolver(resolver),
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// A server configuration presenting `cert`; with `client_verifier`, clients must present an
/// RA-TLS certificate that it accepts (mutual mode). TLS 1.3 only, no tickets, no session
/// storage, no early data.
pub fn server_config(
    cert: Arc<dyn ResolvesServerCert>,
    client_verifier: Option<Arc<RaTlsVerifier>>,
) -> Result<rustls::ServerConfig> {
    server_config_with_time_provider(cert, client_verifier, Arc::new(DefaultTimeProvider))
}

/// As [`server_config`], with the clock given.
pub fn server_config_with_time_provider(
    cert: Arc<dyn ResolvesServerCert>,
    client_verifier: Option<Arc<RaTlsVerifier>>,
    time_provider: Arc<dyn TimeProvider>,
) -> Result<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_details(provider(), time_provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(config_error)?;
    let builder = match client_verifier {
        Some(v) => builder.with_client_cert_verifier(Arc::new(RaTlsClientCertVerifier::new(v))),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.max_early_data_size = 0;
    // No 0.5-RTT data: nothing is sent before the client (certificate) is verified.
    config.send_half_rtt_data = false;
    Ok(config)
}

/// The verified peer of an established connection (client or server side), looked up in
/// `verifier`'s cache by the peer's certificate.
pub fn peer_of(verifier: &RaTlsVerifier, conn: &rustls::CommonState) -> Option<Arc<VerifiedPeer>> {
    let certs = conn.peer_certificates()?;
    let [end_entity] = certs else {
        return None;
    };
    verifier.peer(end_entity.as_ref())
}

/// As [`peer_of`], but judged at `now`: the cached result while it is valid at `now`, else
/// the peer's certificate verified again (so a result evicted from the cache since the
/// handshake is recovered, and one that has expired since is an error). `None` when the
/// connection has no single peer certificate.
pub fn peer_of_at(
    verifier: &RaTlsVerifier,
    conn: &rustls::CommonState,
    now: i64,
) -> Option<Result<Arc<VerifiedPeer>>> {
    let certs = conn.peer_certificates()?;
    let [end_entity] = certs else {
        return None;
    };
    Some(verifier.verify_certificate(end_entity.as_ref(), now))
}
