//! End to end over loopback TCP on the simulated TEE: `cocoon-enclave`'s server and
//! `cocoon-client`, server-auth and mutual modes, freshness, rotation, and the channel attacks
//! that need a network (slowloris, a changed measurement, a missing client certificate, a
//! policy mismatch, a replayed nonce). Every network step runs under a deadline.
#![cfg(feature = "sim")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use cocoon_attestation::claims::ClaimsPlatform;
use cocoon_attestation::sim::tdx::SimTdReport;
use cocoon_attestation::Error;
use cocoon_client::{fresh_attestation, ClientError};
use cocoon_enclave::api::json_response;
use cocoon_enclave::identity::IdentityConfig;
use cocoon_enclave::rotation::{spawn_rotation, RotationConfig};
use cocoon_enclave::server::{ConnectionInfo, Router, ServerOptions, ServerStats};
use common::*;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server_auth_shows_the_enclaves_claims_to_the_client(tee: Tee, platform: ClaimsPlatform) {
    let server = start(tee, None).await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let expected = server.resolver.current();
    let peer = Arc::clone(conn.peer());
    assert_eq!(peer.claims.as_ref(), Some(expected.claims()));
    assert_eq!(expected.claims().platform, platform);
    assert_eq!(peer.spki_sha256, expected.spki_sha256());
    assert!(peer.simulated);

    // The app behind the server sees the same claims, and no client peer in server-auth mode.
    let (status, identity) = get_json(&mut conn, "/v1/identity").await;
    assert_eq!(status, 200);
    assert_eq!(
        identity["claims"]["tls_spki_sha256"],
        hex::encode(peer.spki_sha256)
    );
    assert_eq!(identity["claims"]["platform"], platform.as_str());
    assert_eq!(identity["claims"]["config_digest"], hex::encode([0x44; 32]));
    assert!(identity["peer"].is_null(), "{identity}");
    server.handle.shutdown().await;
}

#[tokio::test]
async fn server_auth_on_sim_tdx_shows_the_enclaves_claims_to_the_client() {
    server_auth_shows_the_enclaves_claims_to_the_client(Tee::Tdx, ClaimsPlatform::SimulatedTdx)
        .await;
}

#[tokio::test]
async fn server_auth_on_sim_snp_shows_the_enclaves_claims_to_the_client() {
    server_auth_shows_the_enclaves_claims_to_the_client(Tee::Snp, ClaimsPlatform::SimulatedSnp)
        .await;
}

async fn mutual_auth_shows_each_side_the_others_claims(server_tee: Tee, client_tee: Tee) {
    let server = start(server_tee, Some(sim_verifier())).await;
    let client_attester = attester(client_tee);
    let client_identity = resolver(client_attester.as_ref(), &identity_config());
    let mut conn = connect(&server, sim_verifier(), Some(Arc::clone(&client_identity)))
        .await
        .unwrap();
    // The client app sees the server's claims …
    assert_eq!(
        conn.peer().claims.as_ref(),
        Some(server.resolver.current().claims())
    );
    // … and the server app sees the client's.
    let (status, identity) = get_json(&mut conn, "/v1/identity").await;
    assert_eq!(status, 200);
    let client_claims = client_identity.current();
    assert_eq!(
        identity["peer"]["claims"]["tls_spki_sha256"],
        hex::encode(client_claims.spki_sha256()),
        "{identity}"
    );
    assert_eq!(
        identity["peer"]["claims"]["platform"],
        client_claims.claims().platform.as_str()
    );
    assert_eq!(identity["peer"]["simulated"], true);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn mutual_auth_on_sim_tdx_shows_each_side_the_others_claims() {
    mutual_auth_shows_each_side_the_others_claims(Tee::Tdx, Tee::Tdx).await;
}

#[tokio::test]
async fn mutual_auth_on_sim_snp_shows_each_side_the_others_claims() {
    mutual_auth_shows_each_side_the_others_claims(Tee::Snp, Tee::Snp).await;
}

#[tokio::test]
async fn mutual_auth_between_sim_snp_client_and_sim_tdx_server() {
    mutual_auth_shows_each_side_the_others_claims(Tee::Tdx, Tee::Snp).await;
}

#[tokio::test]
async fn an_ed25519_enclave_key_works_end_to_end() {
    let config = IdentityConfig {
        key_algorithm: cocoon_enclave::identity::KeyAlgorithm::Ed25519,
        ..identity_config()
    };
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Snp),
        Some(sim_verifier()),
        Router::new(),
        ServerOptions::default(),
        &config,
    )
    .await;
    // Mutual, with an Ed25519 client key as well.
    let client_identity = resolver(attester(Tee::Tdx).as_ref(), &config);
    let mut conn = connect(&server, sim_verifier(), Some(client_identity))
        .await
        .unwrap();
    assert_eq!(
        conn.peer().spki_sha256,
        server.resolver.current().spki_sha256()
    );
    fresh_attestation(&mut conn, b"ed25519").await.unwrap();
    server.handle.shutdown().await;
}

#[tokio::test]
async fn request_extensions_carry_the_verified_client_to_mounted_routes() {
    let router = Router::new().route(
        Method::GET,
        "/v1/whoami",
        |request: http::Request<hyper::body::Incoming>| async move {
            let info = request.extensions().get::<ConnectionInfo>().cloned();
            let spki = info
                .and_then(|i| i.peer)
                .map(|p| hex::encode(p.spki_sha256))
                .unwrap_or_default();
            json_response(
                StatusCode::OK,
                serde_json::json!({ "peer": spki }).to_string().into(),
            )
        },
    );
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        Some(sim_verifier()),
        router,
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let client_identity = resolver(attester(Tee::Tdx).as_ref(), &identity_config());
    let mut conn = connect(&server, sim_verifier(), Some(Arc::clone(&client_identity)))
        .await
        .unwrap();
    let (status, body) = get_json(&mut conn, "/v1/whoami").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["peer"],
        hex::encode(client_identity.current().spki_sha256())
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn mutual_mode_refuses_a_client_without_a_certificate() {
    let server = start(Tee::Tdx, Some(sim_verifier())).await;
    // TLS 1.3: the client's side of the handshake may complete before the server checks the
    // client's certificate; the refusal then arrives as an alert on the first read.
    let failure = match connect(&server, sim_verifier(), None).await {
        Err(e) => e,
        Ok(mut conn) => tokio::time::timeout(STEP, conn.get("/v1/identity"))
            .await
            .expect("answer within the deadline")
            .expect_err("no application data without a client certificate"),
    };
    assert!(
        matches!(
            failure,
            ClientError::Tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired
            ))
        ),
        "{failure:?}"
    );
    assert!(matches!(
        server.handle.stats().last_failure(),
        Some(rustls::Error::NoCertificatesPresented)
    ));
    assert_eq!(ServerStats::count(&server.handle.stats().handshakes_ok), 0);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn fresh_attestation_binds_the_clients_nonce_to_the_same_key() {
    let server = start(Tee::Tdx, None).await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let nonce = cocoon_client::random_nonce().unwrap();
    let fresh = fresh_attestation(&mut conn, &nonce).await.unwrap();
    let claims = fresh.claims.as_ref().expect("fresh claims");
    assert_eq!(
        claims.nonce.as_ref().map(|n| n.as_bytes()),
        Some(&nonce[..])
    );
    assert_eq!(fresh.spki_sha256, conn.peer().spki_sha256);
    // The same connection stays usable (keep-alive over the attested stream).
    let again = cocoon_client::fresh_attestation_random(&mut conn)
        .await
        .unwrap();
    assert_ne!(again.evidence_sha256, fresh.evidence_sha256);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn fresh_attestation_on_sim_snp_verifies() {
    let server = start(Tee::Snp, None).await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let fresh = fresh_attestation(&mut conn, b"snp nonce").await.unwrap();
    assert_eq!(
        fresh
            .claims
            .as_ref()
            .and_then(|c| c.nonce.clone())
            .map(|n| n.as_bytes().to_vec()),
        Some(b"snp nonce".to_vec())
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn replayed_attestation_for_another_nonce_is_refused_as_nonce_mismatch() {
    // A server that answers every nonce with evidence for a nonce of its own choosing (a
    // replay of an earlier answer): authentic evidence for the right key, wrong nonce.
    let router = Router::new().route(Method::GET, "/v1/attestation", {
        let attester = attester(Tee::Tdx);
        move |request: http::Request<hyper::body::Incoming>| {
            let attester = Arc::clone(&attester);
            async move {
                let info = request
                    .extensions()
                    .get::<ConnectionInfo>()
                    .cloned()
                    .unwrap();
                let stale = info
                    .identity
                    .fresh_attestation(attester.as_ref(), b"an earlier client's nonce")
                    .unwrap();
                json_response(StatusCode::OK, stale.to_json().into())
            }
        }
    });
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        router,
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let failure = fresh_attestation(&mut conn, b"my nonce").await.unwrap_err();
    assert!(
        matches!(failure, ClientError::Attestation(Error::NonceMismatch)),
        "{failure:?}"
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn a_fresh_attestation_from_another_key_is_refused_even_with_the_right_nonce() {
    // An attacker relays our nonce to another (genuine) enclave and hands back its answer.
    let ours = start(Tee::Tdx, None).await;
    let other = start(Tee::Tdx, None).await;
    let mut conn = connect(&ours, sim_verifier(), None).await.unwrap();
    let mut relay = connect(&other, sim_verifier(), None).await.unwrap();
    let nonce = cocoon_client::random_nonce().unwrap();
    let (status, body) = tokio::time::timeout(
        STEP,
        relay.get(&format!("/v1/attestation?nonce={}", hex::encode(nonce))),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(status, StatusCode::OK);
    let failure =
        cocoon_client::verify_fresh_response(&conn, &body, &nonce, cocoon_client::unix_now())
            .unwrap_err();
    assert!(
        matches!(
            failure,
            ClientError::Attestation(Error::FreshClaimsChanged {
                field: "tls_spki_sha256"
            })
        ),
        "{failure:?}"
    );
    // Our own enclave's answer to the same nonce passes.
    fresh_attestation(&mut conn, &nonce).await.unwrap();
    ours.handle.shutdown().await;
    other.handle.shutdown().await;
}

#[tokio::test]
async fn a_tls_1_2_client_is_refused_by_the_server() {
    let server = start(Tee::Tdx, None).await;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS12])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(common::AcceptAnything))
    .with_no_client_auth();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let result = tokio::time::timeout(
        STEP,
        connector.connect("localhost".try_into().unwrap(), tcp),
    )
    .await
    .expect("refused within the deadline");
    let error = result.expect_err("TLS 1.2 must be refused");
    let tls = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .cloned();
    assert!(
        matches!(
            tls,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::ProtocolVersion
            ))
        ),
        "{error:?}"
    );
    let failure = server.handle.stats().last_failure();
    assert!(
        matches!(
            failure,
            Some(rustls::Error::PeerIncompatible(
                rustls::PeerIncompatible::Tls12NotOfferedOrEnabled
            ))
        ),
        "{failure:?}"
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn attestation_endpoint_answers_bad_nonces_with_400_json() {
    let server = start(Tee::Tdx, None).await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let too_long = format!("/v1/attestation?nonce={}", "ab".repeat(65));
    for path in [
        "/v1/attestation",
        "/v1/attestation?nonce=",
        "/v1/attestation?nonce=xyz",
        "/v1/attestation?nonce=abc",
        "/v1/attestation?nonce=01&nonce=02",
        too_long.as_str(),
    ] {
        let (status, body) = get_json(&mut conn, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["kind"], "bad_nonce", "{path}: {body}");
    }
    let (status, _) = get_json(&mut conn, "/v1/nowhere").await;
    assert_eq!(status, 404);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn slowloris_connections_are_dropped_after_the_handshake_timeout_without_blocking_others() {
    let options = ServerOptions {
        handshake_timeout: Duration::from_millis(800),
        max_concurrent_handshakes: 8,
        ..ServerOptions::default()
    };
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        Router::new(),
        options,
        &identity_config(),
    )
    .await;
    // Two that send nothing, one that sends the start of a ClientHello and stalls.
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(
            tokio::time::timeout(STEP, TcpStream::connect(server.addr()))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let mut partial = tokio::time::timeout(STEP, TcpStream::connect(server.addr()))
        .await
        .unwrap()
        .unwrap();
    // TLS record header (handshake, length 512) and the first bytes of a ClientHello.
    partial
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .await
        .unwrap();

    // A well-behaved client is served meanwhile.
    let started = std::time::Instant::now();
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let (status, _) = get_json(&mut conn, "/v1/identity").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_millis(800));

    // The stalled ones are closed by the server once the timeout passes.
    silent.push(partial);
    for mut stream in silent {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("the server closes the stalled connection");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the server sent bytes to a stalled client: {read:?}"
        );
    }
    assert_eq!(
        ServerStats::count(&server.handle.stats().handshakes_timed_out),
        3
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_handshake_cap_are_closed_at_once() {
    let options = ServerOptions {
        handshake_timeout: Duration::from_secs(5),
        max_concurrent_handshakes: 1,
        ..ServerOptions::default()
    };
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        Router::new(),
        options,
        &identity_config(),
    )
    .await;
    let _holder = TcpStream::connect(server.addr()).await.unwrap();
    // Let the server take the first one into its handshake slot.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = TcpStream::connect(server.addr()).await.unwrap();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(Duration::from_secs(2), second.read(&mut buf))
        .await
        .expect("closed well before the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(ServerStats::count(&server.handle.stats().over_capacity), 1);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn a_peer_whose_measurement_changed_is_refused_by_a_client_pinned_to_the_first() {
    let first_td = SimTdReport::default();
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        tdx_attester_with(first_td.clone()),
        None,
        Router::new(),
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let addr = server.addr();
    // Pin what the first connection showed.
    let conn = connect(&server, sim_verifier(), None).await.unwrap();
    let first_peer = Arc::clone(conn.peer());
    let mrtd = conn.peer().measurements.get("mrtd").cloned().expect("mrtd");
    assert_eq!(mrtd, hex::encode(first_td.mr_td));
    drop(conn);
    let pinned = verifier(&format!("{SIM_POLICY}[tdx]\nmrtd = [\"{mrtd}\"]\n"));
    connect(&server, Arc::clone(&pinned), None).await.unwrap();
    server.handle.shutdown().await;

    // The "same" server restarts with another TD image.
    let changed = SimTdReport {
        mr_td: [0x99; 48],
        ..first_td
    };
    let restarted = start_on(
        addr,
        tdx_attester_with(changed),
        None,
        Router::new(),
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    // A client that remembers the first peer (no pinning policy) sees the change …
    let again = connect(&restarted, sim_verifier(), None).await.unwrap();
    let changed = again.peer().check_same_measurements(&first_peer);
    assert!(
        matches!(&changed, Err(Error::MeasurementChanged { field, .. }) if field == "mrtd"),
        "{changed:?}"
    );
    // … and one pinned to it by policy refuses the handshake.
    let failure = connect(&restarted, pinned, None).await.unwrap_err();
    let error = failure.attestation().expect("an attestation error");
    assert!(
        policy_failures(error).iter().any(
            |e| matches!(e, Error::MeasurementNotAllowed { field, .. } if field.contains("mrtd"))
        ),
        "{failure:?}"
    );
    restarted.handle.shutdown().await;
}

#[tokio::test]
async fn evidence_valid_but_policy_mismatch_is_refused_over_the_network() {
    // A debug TD: authentic simulated evidence, but the policy forbids debug.
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        tdx_attester_with(SimTdReport::default().debug(true)),
        None,
        Router::new(),
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let failure = connect(&server, sim_verifier(), None).await.unwrap_err();
    let error = failure.attestation().expect("an attestation error");
    assert!(
        policy_failures(error)
            .iter()
            .any(|e| matches!(e, Error::DebugNotAllowed)),
        "{failure:?}"
    );
    assert_eq!(ServerStats::count(&server.handle.stats().handshakes_ok), 0);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn simulated_evidence_is_refused_without_allow_simulated() {
    let server = start(Tee::Snp, None).await;
    let failure = connect(&server, verifier("version = 1\n"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            failure,
            ClientError::Attestation(Error::SimulatedEvidenceNotAllowed)
        ),
        "{failure:?}"
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn rotation_keeps_open_connections_and_gives_new_ones_the_new_certificate() {
    let config = IdentityConfig {
        lifetime_secs: 6,
        backdate_secs: 0,
        ..identity_config()
    };
    let attester = attester(Tee::Tdx);
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&attester),
        None,
        Router::new(),
        ServerOptions::default(),
        &config,
    )
    .await;
    let rotation = spawn_rotation(
        Arc::clone(&server.resolver),
        attester,
        config,
        RotationConfig::default(),
    );
    let mut old = connect(&server, sim_verifier(), None).await.unwrap();
    let old_key = old.peer().spki_sha256;

    // Renewal after 2/3 of 6 s.
    tokio::time::timeout(Duration::from_secs(15), async {
        while server.resolver.generation() == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("rotated within the deadline");
    assert_ne!(server.resolver.current().spki_sha256(), old_key);

    // The old connection still works and still speaks for its own key …
    let (status, identity) = get_json(&mut old, "/v1/identity").await;
    assert_eq!(status, 200);
    assert_eq!(identity["claims"]["tls_spki_sha256"], hex::encode(old_key));
    let fresh = fresh_attestation(&mut old, b"after rotation")
        .await
        .unwrap();
    assert_eq!(fresh.spki_sha256, old_key);

    // … and a new connection gets the new certificate and claims.
    let new = connect(&server, sim_verifier(), None).await.unwrap();
    assert_eq!(
        new.peer().spki_sha256,
        server.resolver.current().spki_sha256()
    );
    assert_ne!(new.peer().spki_sha256, old_key);
    assert_eq!(
        new.peer().claims.as_ref(),
        Some(server.resolver.current().claims())
    );
    assert_ne!(new.peer().claims, old.peer().claims);
    rotation.abort();
    server.handle.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let options = ServerOptions {
        header_read_timeout: Duration::from_millis(500),
        ..ServerOptions::default()
    };
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        Router::new(),
        options,
        &identity_config(),
    )
    .await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let (status, _) = get_json(&mut conn, "/v1/identity").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let failure = tokio::time::timeout(STEP, conn.get("/v1/identity"))
        .await
        .expect("answer within the deadline")
        .expect_err("the idle connection was closed");
    assert!(
        matches!(failure, ClientError::Http(_) | ClientError::Io(_)),
        "{failure:?}"
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_connection_cap_are_closed_at_once() {
    let options = ServerOptions {
        max_connections: 1,
        ..ServerOptions::default()
    };
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        Router::new(),
        options,
        &identity_config(),
    )
    .await;
    let mut first = connect(&server, sim_verifier(), None).await.unwrap();
    let refused = connect(&server, sim_verifier(), None).await.unwrap_err();
    assert!(
        matches!(refused, ClientError::Io(_) | ClientError::Tls(_)),
        "{refused:?}"
    );
    assert_eq!(ServerStats::count(&server.handle.stats().over_capacity), 1);
    // The first connection is unaffected.
    let (status, _) = get_json(&mut first, "/v1/identity").await;
    assert_eq!(status, 200);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn a_mounted_post_route_receives_the_body_over_the_attested_connection() {
    let router = Router::new().route(
        Method::POST,
        "/v1/echo",
        |request: http::Request<hyper::body::Incoming>| async move {
            use http_body_util::BodyExt;
            let body = request.into_body().collect().await.unwrap().to_bytes();
            json_response(StatusCode::OK, body.to_vec())
        },
    );
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Snp),
        None,
        router,
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let request = http::Request::post("/v1/echo")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"prompt\":\"hello\"}",
        )))
        .unwrap();
    let response = tokio::time::timeout(STEP, conn.request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body().as_ref(), b"{\"prompt\":\"hello\"}");
    // GET on a POST-only path is 405.
    let (status, _) = get_json(&mut conn, "/v1/echo").await;
    assert_eq!(status, 405);
    server.handle.shutdown().await;
}

#[tokio::test]
async fn a_response_over_the_size_cap_is_refused() {
    let router = Router::new().route(
        Method::GET,
        "/v1/huge",
        |_request: http::Request<hyper::body::Incoming>| async move {
            json_response(StatusCode::OK, vec![b' '; 2 * 1024 * 1024])
        },
    );
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        router,
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    conn.set_max_response_bytes(64 * 1024);
    let failure = tokio::time::timeout(STEP, conn.get("/v1/huge"))
        .await
        .expect("answer within the deadline")
        .unwrap_err();
    assert!(
        matches!(failure, ClientError::ResponseTooLarge { limit: 65536 }),
        "{failure:?}"
    );
    server.handle.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_a_request_in_flight_finish() {
    let router = Router::new().route(
        Method::GET,
        "/v1/slow",
        |_request: http::Request<hyper::body::Incoming>| async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            json_response(StatusCode::OK, b"{\"done\":true}".to_vec())
        },
    );
    let server = start_on(
        "127.0.0.1:0".parse().unwrap(),
        attester(Tee::Tdx),
        None,
        router,
        ServerOptions::default(),
        &identity_config(),
    )
    .await;
    let addr = server.addr();
    let mut conn = connect(&server, sim_verifier(), None).await.unwrap();
    let request = tokio::spawn(async move { get_json(&mut conn, "/v1/slow").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(STEP, server.handle.shutdown())
        .await
        .expect("shut down within the deadline");
    let (status, body) = request.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["done"], true);
    let refused = tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap();
    assert!(refused.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting() {
    let server = start(Tee::Tdx, None).await;
    let addr = server.addr();
    server.handle.shutdown().await;
    let refused = tokio::time::timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap();
    assert!(refused.is_err(), "still accepting after shutdown");
}

/// The individual policy failures inside a verifier error (none if it is not a policy refusal).
fn policy_failures(error: &Error) -> Vec<Error> {
    match error {
        Error::PolicyRejected { failures } => failures.clone(),
        _ => Vec::new(),
    }
}
