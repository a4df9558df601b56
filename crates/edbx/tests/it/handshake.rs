//! Opening sessions against the real server: Noise, plaintext negotiation, rejected tokens.

use crate::common::{ALL_MODES, ServerOptions, TestServer, client, config};
use edbx::{Client, ErrorKind, ServerCode};
use serde_json::json;

#[tokio::test]
async fn noise_session_with_the_bootstrap_token() {
    let server = crate::common::server(ALL_MODES[0]);
    let client = client(&server, true).await;
    assert!(client.is_encrypted());
    assert!(client.get("orders", "none").await.unwrap().is_none());
}

#[tokio::test]
async fn a_rejected_token_is_a_typed_handshake_error_with_the_servers_message() {
    let server = crate::common::server(ALL_MODES[0]);
    let err = Client::connect(config(&server).token("not-a-jwt"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Handshake, "{err}");
    assert!(err.message().contains("invalid control token"), "{err}");
    assert!(!format!("{err:?}").contains("not-a-jwt"));
}

#[tokio::test]
async fn a_token_padded_with_whitespace_still_keys_noise() {
    let server = crate::common::server(ALL_MODES[0]);
    let padded = format!("  {}\n", server.token());
    let client = Client::connect(config(&server).token(padded))
        .await
        .unwrap();
    assert!(client.list().await.unwrap().items.is_empty());
}

#[tokio::test]
async fn plaintext_only_when_asked_and_granted() {
    // Server allows plaintext, client asks: plaintext.
    let open = crate::common::server(ALL_MODES[1]);
    let plain = client(&open, false).await;
    assert!(!plain.is_encrypted());
    plain
        .create("doc", "p", "created", &json!({"v": 1}))
        .await
        .unwrap();
    // Server allows plaintext, client does not ask: Noise.
    let noisy = client(&open, true).await;
    assert!(noisy.is_encrypted());
    assert!(noisy.get("doc", "p").await.unwrap().is_some());
    // Server refuses plaintext, client asks: Noise anyway, and it works.
    let strict = crate::common::server(ALL_MODES[0]);
    let asked = client(&strict, false).await;
    assert!(asked.is_encrypted());
    asked
        .create("doc", "q", "created", &json!({"v": 1}))
        .await
        .unwrap();
}

#[tokio::test]
async fn tenants_are_checked_at_the_hello() {
    let server = TestServer::start(ServerOptions::default().multi_tenant(true)).unwrap();
    // An empty tenant means the server default, which multi-tenant mode refuses.
    let err = Client::connect(config(&server).tenant_id(""))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Handshake);
    assert!(err.message().contains("tenantId is required"), "{err}");

    let scoped = server
        .mint_token(
            &edbx_testkit::TokenSpec::new("test", "t")
                .action("*.*")
                .tenant("alpha"),
        )
        .unwrap();
    let err = Client::connect(config(&server).token(scoped.clone()).tenant_id("beta"))
        .await
        .unwrap_err();
    assert!(err.message().contains("does not grant access"), "{err}");
    let alpha = Client::connect(config(&server).token(scoped).tenant_id("alpha"))
        .await
        .unwrap();
    alpha
        .create("doc", "a", "created", &json!({"v": 1}))
        .await
        .unwrap();
    // Another tenant does not see it.
    let beta = Client::connect(config(&server).tenant_id("beta"))
        .await
        .unwrap();
    assert!(beta.get("doc", "a").await.unwrap().is_none());
}

#[tokio::test]
async fn per_call_tokens_are_authorized_by_the_server() {
    let server = crate::common::server(ALL_MODES[0]);
    let client = client(&server, true).await;
    client
        .create("doc", "a", "created", &json!({"v": 1}))
        .await
        .unwrap();
    let garbage = client
        .with_token("garbage")
        .get("doc", "a")
        .await
        .unwrap_err();
    assert_eq!(
        garbage.server_code(),
        Some(ServerCode::InvalidToken),
        "{garbage}"
    );
    let reader = server
        .mint_token(
            &edbx_testkit::TokenSpec::new("test", "reader")
                .action("aggregate.read")
                .tenant("default"),
        )
        .unwrap();
    let as_reader = client.with_token(reader);
    assert!(as_reader.get("doc", "a").await.unwrap().is_some());
    let denied = as_reader
        .apply("doc", "a", "edited", &json!({"v": 2}))
        .await
        .unwrap_err();
    assert_eq!(
        denied.server_code(),
        Some(ServerCode::Unauthorized),
        "{denied}"
    );
    // The original handle still writes.
    client
        .apply("doc", "a", "edited", &json!({"v": 2}))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_servers_http_port_is_reported_as_not_a_control_port() {
    let server = crate::common::server(ALL_MODES[0]);
    let err = Client::connect(config(&server).port(server.http_port()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
    assert!(!err.is_invalid_input() && !err.is_retryable(), "{err:?}");
    let expected = format!(
        "127.0.0.1:{} is not an EventDBX control port (it answered like an HTTP server",
        server.http_port()
    );
    assert!(err.message().starts_with(&expected), "{err}");
}
