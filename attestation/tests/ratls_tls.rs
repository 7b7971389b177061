//! RA-TLS inside rustls handshakes, in memory (no sockets), on the simulated TEE: server and
//! mutual authentication, claims seen by the application, TLS 1.3 only, no resumption, chain
//! depth 0, mandatory client certificates, and no application byte before verification.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod ratls_common;

use std::io::{Read, Write};
use std::sync::Arc;

use ::rustls::HandshakeKind;
use cocoon_attestation::claims::ClaimsPlatform;
use cocoon_attestation::policy::Policy;
use cocoon_attestation::ratls::*;
use cocoon_attestation::Error;
use ratls_common::sim::*;
use ratls_common::*;

fn client(verifier: &Arc<RaTlsVerifier>) -> ::rustls::ClientConfig {
    client_config_with_time_provider(verifier.clone(), None, fixed(SIM_NOW)).unwrap()
}

fn server(der: &[u8], key: &rcgen::KeyPair) -> ::rustls::ServerConfig {
    server_config_with_time_provider(server_resolver(der, key), None, fixed(SIM_NOW)).unwrap()
}

fn client_error(f: Failure) -> ::rustls::Error {
    match f {
        Failure::Client(e) => e,
        other => panic!("expected the client to fail, got {other:?}"),
    }
}

fn server_error(f: Failure) -> ::rustls::Error {
    match f {
        Failure::Server(e) => e,
        other => panic!("expected the server to fail, got {other:?}"),
    }
}

#[test]
fn client_verifies_a_sim_tdx_server_and_sees_its_claims() {
    let key = p256();
    let der = tdx_cert(&key);
    let verifier = verifier();
    let (mut c, mut s) = connect(client(&verifier), server(&der, &key));
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(
        c.protocol_version(),
        Some(::rustls::ProtocolVersion::TLSv1_3)
    );
    let peer = peer_of(&verifier, &c).expect("verified peer");
    assert_eq!(peer.platform, ClaimsPlatform::SimulatedTdx);
    assert_eq!(
        peer.claims.as_ref().unwrap().tls_spki_sha256,
        spki_sha256(&key)
    );
    assert_eq!(send_to_server(&mut c, &mut s, b"prompt"), b"prompt");
}

#[test]
fn mutual_mode_verifies_both_sim_snp_sides() {
    let server_key = ed25519();
    let server_der = snp_cert(&server_key);
    let client_key = p256();
    let client_der = snp_cert(&client_key);
    let client_verifier = verifier();
    let server_verifier = verifier();
    let cc = client_config_with_time_provider(
        client_verifier.clone(),
        Some(client_resolver(&client_der, &client_key)),
        fixed(SIM_NOW),
    )
    .unwrap();
    let sc = server_config_with_time_provider(
        server_resolver(&server_der, &server_key),
        Some(server_verifier.clone()),
        fixed(SIM_NOW),
    )
    .unwrap();
    let (mut c, mut s) = connect(cc, sc);
    handshake(&mut c, &mut s).unwrap();
    let seen_by_client = peer_of(&client_verifier, &c).unwrap();
    let seen_by_server = peer_of(&server_verifier, &s).unwrap();
    assert_eq!(seen_by_client.spki_sha256, spki_sha256(&server_key));
    assert_eq!(seen_by_server.spki_sha256, spki_sha256(&client_key));
    assert_eq!(seen_by_server.platform, ClaimsPlatform::SimulatedSnp);
}

#[test]
fn mutual_mode_between_sim_tdx_and_sim_snp() {
    let server_key = p256();
    let server_der = tdx_cert(&server_key);
    let client_key = ed25519();
    let client_der = snp_cert(&client_key);
    let v = verifier();
    let cc = client_config_with_time_provider(
        v.clone(),
        Some(client_resolver(&client_der, &client_key)),
        fixed(SIM_NOW),
    )
    .unwrap();
    let sc = server_config_with_time_provider(
        server_resolver(&server_der, &server_key),
        Some(v.clone()),
        fixed(SIM_NOW),
    )
    .unwrap();
    let (mut c, mut s) = connect(cc, sc);
    handshake(&mut c, &mut s).unwrap();
    assert_eq!(
        peer_of(&v, &c).unwrap().platform,
        ClaimsPlatform::SimulatedTdx
    );
    assert_eq!(
        peer_of(&v, &s).unwrap().platform,
        ClaimsPlatform::SimulatedSnp
    );
}

#[test]
fn missing_client_certificate_in_mutual_mode_is_refused() {
    let key = p256();
    let der = tdx_cert(&key);
    let v = verifier();
    let sc = server_config_with_time_provider(
        server_resolver(&der, &key),
        Some(v.clone()),
        fixed(SIM_NOW),
    )
    .unwrap();
    let (mut c, mut s) = connect(client(&v), sc);
    let err = server_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(err, ::rustls::Error::NoCertificatesPresented),
        "{err:?}"
    );
}

#[test]
fn verification_failure_reaches_the_client_as_the_attestation_error() {
    // The default policy refuses simulated evidence.
    let key = p256();
    let der = tdx_cert(&key);
    let strict = Arc::new(RaTlsVerifier::new(config(Policy::default())).unwrap());
    let (mut c, mut s) = connect(client(&strict), server(&der, &key));
    let err = client_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            attestation_error(&err),
            Some(Error::SimulatedEvidenceNotAllowed)
        ),
        "{err:?}"
    );
    assert!(peer_of(&strict, &c).is_none());
}

#[test]
fn client_certificate_failure_is_the_servers_attestation_error() {
    let server_key = p256();
    let server_der = tdx_cert(&server_key);
    let client_key = p256();
    let client_der = tdx_cert(&client_key);
    let strict = Arc::new(RaTlsVerifier::new(config(Policy::default())).unwrap());
    let cc = client_config_with_time_provider(
        verifier(),
        Some(client_resolver(&client_der, &client_key)),
        fixed(SIM_NOW),
    )
    .unwrap();
    let sc = server_config_with_time_provider(
        server_resolver(&server_der, &server_key),
        Some(strict),
        fixed(SIM_NOW),
    )
    .unwrap();
    let (mut c, mut s) = connect(cc, sc);
    let err = server_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            attestation_error(&err),
            Some(Error::SimulatedEvidenceNotAllowed)
        ),
        "{err:?}"
    );
}

#[test]
fn time_from_the_time_provider_is_used_for_the_certificate() {
    // Two hours after the certificate expired.
    let key = p256();
    let der = tdx_cert(&key);
    let cc = client_config_with_time_provider(verifier(), None, fixed(SIM_NOW + 4 * 3600)).unwrap();
    let (mut c, mut s) = connect(cc, server(&der, &key));
    let err = client_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            attestation_error(&err),
            Some(Error::CertificateExpired { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn intermediate_certificates_are_refused() {
    let key = p256();
    let der = tdx_cert(&key);
    let other = tdx_cert(&p256());
    let key_der = ::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let signing = ::rustls::crypto::ring::sign::any_supported_type(&key_der).unwrap();
    let chain = Arc::new(::rustls::sign::CertifiedKey::new(
        vec![der.clone().into(), other.into()],
        signing,
    ));
    let sc = server_config_with_time_provider(
        Arc::new(::rustls::sign::SingleCertAndKey::from(chain)),
        None,
        fixed(SIM_NOW),
    )
    .unwrap();
    let (mut c, mut s) = connect(client(&verifier()), sc);
    let err = client_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            attestation_error(&err),
            Some(Error::CertificateChainTooLong { intermediates: 1 })
        ),
        "{err:?}"
    );
}

#[test]
fn tls12_only_client_is_refused_by_the_server() {
    let key = p256();
    let der = tdx_cert(&key);
    let provider = Arc::new(::rustls::crypto::ring::default_provider());
    let tls12 = ::rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&::rustls::version::TLS12])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RaTlsServerCertVerifier::new(verifier())))
        .with_no_client_auth();
    let (mut c, mut s) = connect(tls12, server(&der, &key));
    let err = server_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            err,
            ::rustls::Error::PeerIncompatible(::rustls::PeerIncompatible::Tls12NotOfferedOrEnabled)
        ),
        "{err:?}"
    );
}

#[test]
fn our_client_refuses_a_tls12_only_server() {
    let key = p256();
    let der = tdx_cert(&key);
    let provider = Arc::new(::rustls::crypto::ring::default_provider());
    let tls12_server = ::rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&::rustls::version::TLS12])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(server_resolver(&der, &key));
    let (mut c, mut s) = connect(client(&verifier()), tls12_server);
    let err = handshake(&mut c, &mut s).unwrap_err();
    assert!(
        matches!(
            err,
            Failure::Server(::rustls::Error::PeerIncompatible(
                ::rustls::PeerIncompatible::Tls12NotOfferedOrEnabled
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn server_issues_no_tickets_so_a_second_handshake_is_full() {
    let key = p256();
    let der = tdx_cert(&key);
    let v = verifier();
    // A client that would resume if it could.
    let mut resuming = client(&v);
    resuming.resumption = ::rustls::client::Resumption::in_memory_sessions(16);
    let resuming = Arc::new(resuming);
    let server_config = Arc::new(server(&der, &key));
    for round in 0..2 {
        let name = ::rustls::pki_types::ServerName::try_from("enclave.test").unwrap();
        let mut c = ::rustls::ClientConnection::new(resuming.clone(), name).unwrap();
        let mut s = ::rustls::ServerConnection::new(server_config.clone()).unwrap();
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::Full),
            "round {round}"
        );
        assert_eq!(
            s.handshake_kind(),
            Some(HandshakeKind::Full),
            "round {round}"
        );
    }
}

#[test]
fn our_client_does_not_resume_even_when_the_server_issues_tickets() {
    let key = p256();
    let der = tdx_cert(&key);
    let provider = Arc::new(::rustls::crypto::ring::default_provider());
    let mut plain = ::rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&::rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(server_resolver(&der, &key));
    plain.send_tls13_tickets = 2;
    let plain = Arc::new(plain);
    let ours = Arc::new(client(&verifier()));
    for round in 0..2 {
        let name = ::rustls::pki_types::ServerName::try_from("enclave.test").unwrap();
        let mut c = ::rustls::ClientConnection::new(ours.clone(), name).unwrap();
        let mut s = ::rustls::ServerConnection::new(plain.clone()).unwrap();
        handshake(&mut c, &mut s).unwrap();
        assert_eq!(
            c.handshake_kind(),
            Some(HandshakeKind::Full),
            "round {round}"
        );
    }
}

#[test]
fn configurations_disable_early_data_and_tickets() {
    let key = p256();
    let der = tdx_cert(&key);
    let sc = server(&der, &key);
    assert_eq!(sc.send_tls13_tickets, 0);
    assert_eq!(sc.max_early_data_size, 0);
    assert!(!sc.send_half_rtt_data);
    let cc = client(&verifier());
    assert!(!cc.enable_early_data);
}

#[test]
fn no_application_byte_reaches_the_server_before_the_client_verified_it() {
    let key = p256();
    let der = tdx_cert(&key);
    let strict = Arc::new(RaTlsVerifier::new(config(Policy::default())).unwrap());
    let (mut c, mut s) = connect(client(&strict), server(&der, &key));
    // Written before the handshake: rustls must hold it until verification succeeded.
    c.writer().write_all(b"SECRET PROMPT").unwrap();
    let err = client_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            attestation_error(&err),
            Some(Error::SimulatedEvidenceNotAllowed)
        ),
        "{err:?}"
    );
    let mut plaintext = Vec::new();
    let read = s.reader().read_to_end(&mut plaintext);
    assert!(plaintext.is_empty(), "server read {plaintext:?} ({read:?})");
    // And nothing more leaves the client.
    let mut out = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut out).unwrap();
    }
    assert!(!out.windows(6).any(|w| w == b"SECRET"));
}

#[test]
fn no_application_byte_reaches_the_client_before_the_server_verified_it() {
    // Mutual mode: the server writes first, but refuses the client's certificate.
    let server_key = p256();
    let server_der = tdx_cert(&server_key);
    let client_key = p256();
    let client_der = tdx_cert(&client_key);
    let strict = Arc::new(RaTlsVerifier::new(config(Policy::default())).unwrap());
    let cc = client_config_with_time_provider(
        verifier(),
        Some(client_resolver(&client_der, &client_key)),
        fixed(SIM_NOW),
    )
    .unwrap();
    let sc = server_config_with_time_provider(
        server_resolver(&server_der, &server_key),
        Some(strict),
        fixed(SIM_NOW),
    )
    .unwrap();
    let (mut c, mut s) = connect(cc, sc);
    s.writer().write_all(b"SERVER SECRET").unwrap();
    let err = server_error(handshake(&mut c, &mut s).unwrap_err());
    assert!(
        matches!(
            attestation_error(&err),
            Some(Error::SimulatedEvidenceNotAllowed)
        ),
        "{err:?}"
    );
    let mut plaintext = Vec::new();
    let _ = c.reader().read_to_end(&mut plaintext);
    assert!(plaintext.is_empty(), "client read {plaintext:?}");
}

#[test]
fn client_verifies_a_cocoon_server_and_sees_no_claims_of_ours() {
    let der = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/data/ratls/cocoon_sim_cert.der"
    ))
    .unwrap();
    // The fixture's key: Ed25519 with seed 0x42 × 32 (tests/data/ratls/README.md).
    let mut pkcs8 = hex::decode("302e020100300506032b657004220420").unwrap();
    pkcs8.extend_from_slice(&[0x42; 32]);
    let key = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
    let v = verifier();
    let (mut c, mut s) = connect(client(&v), server(&der, &key));
    handshake(&mut c, &mut s).unwrap();
    let peer = peer_of(&v, &c).unwrap();
    assert_eq!(peer.kind, CertificateKind::Cocoon);
    assert!(peer.claims.is_none());
}

#[test]
fn peer_of_at_verifies_again_when_the_result_was_evicted() {
    let key = p256();
    let der = tdx_cert(&key);
    let v = Arc::new(
        RaTlsVerifier::new(VerifierConfig {
            cache_capacity: 1,
            ..config(Policy::simulated())
        })
        .unwrap(),
    );
    let (mut c, mut s) = connect(client(&v), server(&der, &key));
    handshake(&mut c, &mut s).unwrap();
    // Another verification evicts the handshake's result.
    v.verify_certificate(&tdx_cert(&p256()), SIM_NOW).unwrap();
    assert!(peer_of(&v, &c).is_none());
    let peer = peer_of_at(&v, &c, SIM_NOW).unwrap().unwrap();
    assert_eq!(peer.spki_sha256, spki_sha256(&key));
    assert!(matches!(
        peer_of_at(&v, &c, SIM_NOW + 86_400),
        Some(Err(Error::CertificateExpired { .. }))
    ));
}
