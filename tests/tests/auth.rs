//! Authentication at the handshake, end to end: real gateways, real Node
//! socket.io-client 4.x and 2.x clients, and tokens minted by Node's
//! `jsonwebtoken` (another implementation than the gateway's).
//!
//! - tokens of the HS, RS, ES and EdDSA families connect, on websocket and
//!   long-polling, from the auth payload, the Authorization header and the
//!   query (socket.io-client 2);
//! - every kind of bad token is refused with its reason, counted by reason.

use std::time::Duration;

use e2e::{bins::metric_sample, GatewayProcess, NodePeer, TokenKit};
use serde_json::{json, Value};

const SECRET: &str = "the gateway's test secret";
const EVENT: Duration = Duration::from_secs(5);

fn hs(claims: Value) -> Value {
    json!({"alg": "HS256", "secret": SECRET, "claims": claims})
}

fn valid_claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": {"in": 600}, "iss": "issuer", "aud": "gateways"})
}

fn auth_arg(token: &str) -> String {
    json!({ "token": token }).to_string()
}

/// How a client sends its token.
#[derive(Debug, Clone, Copy)]
enum Carrier {
    /// socket.io-client 4's `auth` payload.
    Auth,
    /// An `Authorization: Bearer` header (socket.io-client 4's `extraHeaders`).
    Header,
    /// socket.io-client 2's `query`.
    QueryV2,
}

impl Carrier {
    /// client.js arguments sending `token` this way over `transport`.
    fn client_args(self, token: &str, transport: &str) -> Vec<String> {
        let mut args = vec!["--transports".to_owned(), transport.to_owned()];
        match self {
            Carrier::Auth => args.extend(["--auth".to_owned(), auth_arg(token)]),
            Carrier::Header => args.extend([
                "--headers".to_owned(),
                json!({ "authorization": format!("Bearer {token}") }).to_string(),
            ]),
            Carrier::QueryV2 => {
                args.extend(["--v2".to_owned(), "--query".to_owned(), auth_arg(token)])
            }
        }
        args
    }
}

/// Gateway 1 takes HS256 (the secret) and RS256 (the RSA public key), with
/// an issuer, an audience and no leeway; gateway 2 takes ES256 only.
async fn gateways(kit: &TokenKit) -> anyhow::Result<(GatewayProcess, GatewayProcess)> {
    let rsa = kit.public_key("rsa").to_string_lossy().into_owned();
    let ec = kit.public_key("ec").to_string_lossy().into_owned();
    let one = GatewayProcess::start(
        "auth-hs-rs",
        &[
            ("GATEWAY_AUTH__JWT_SECRET", SECRET),
            ("GATEWAY_AUTH__JWT_PUBLIC_KEY_FILE", rsa.as_str()),
            ("GATEWAY_AUTH__JWT_ISSUER", "issuer"),
            ("GATEWAY_AUTH__JWT_AUDIENCE", "gateways"),
            ("GATEWAY_AUTH__LEEWAY_S", "0"),
        ],
    )
    .await?;
    let two = GatewayProcess::start(
        "auth-es",
        &[("GATEWAY_AUTH__JWT_PUBLIC_KEY_FILE", ec.as_str())],
    )
    .await?;
    Ok((one, two))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_each_family_connect_on_every_transport_and_client() -> anyhow::Result<()> {
    let kit = TokenKit::new().await?;
    let (one, two) = gateways(&kit).await?;
    let ed_public = kit.public_key("ed").to_string_lossy().into_owned();
    let three = GatewayProcess::start(
        "auth-ed",
        &[("GATEWAY_AUTH__JWT_PUBLIC_KEY_FILE", ed_public.as_str())],
    )
    .await?;
    let rsa = kit.private_key("rsa").to_string_lossy().into_owned();
    let ec = kit.private_key("ec").to_string_lossy().into_owned();
    let ed = kit.private_key("ed").to_string_lossy().into_owned();
    let tokens = kit
        .sign(&json!([
            hs(valid_claims("alice")),
            {"alg": "RS256", "keyFile": rsa, "claims": valid_claims("bob")},
            {"alg": "ES256", "keyFile": ec, "claims": {"sub": "carol", "exp": {"in": 600}}},
            {"alg": "EdDSA", "keyFile": ed, "claims": {"sub": "dave", "exp": {"in": 600}}},
        ]))
        .await?;
    let (hs_token, rs_token, es_token) = (&tokens[0], &tokens[1], &tokens[2]);
    let ed_token = &tokens[3];

    // (case, gateway, token, transport, how the client sends the token)
    let cases = [
        ("hs-ws", &one, hs_token, "websocket", Carrier::Auth),
        ("hs-polling", &one, hs_token, "polling", Carrier::Auth),
        (
            "hs-header-polling",
            &one,
            hs_token,
            "polling",
            Carrier::Header,
        ),
        (
            "hs-v2-query-ws",
            &one,
            hs_token,
            "websocket",
            Carrier::QueryV2,
        ),
        (
            "hs-v2-query-polling",
            &one,
            hs_token,
            "polling",
            Carrier::QueryV2,
        ),
        ("rs-ws", &one, rs_token, "websocket", Carrier::Auth),
        ("rs-polling", &one, rs_token, "polling", Carrier::Auth),
        (
            "rs-v2-query-polling",
            &one,
            rs_token,
            "polling",
            Carrier::QueryV2,
        ),
        (
            "es-v2-query-ws",
            &two,
            es_token,
            "websocket",
            Carrier::QueryV2,
        ),
        ("es-ws", &two, es_token, "websocket", Carrier::Auth),
        ("ed-ws", &three, ed_token, "websocket", Carrier::Auth),
        ("es-polling", &two, es_token, "polling", Carrier::Auth),
    ];
    for (name, gateway, token, transport, carrier) in cases {
        let extra = carrier.client_args(token, transport);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut client = NodePeer::client(name, &gateway.url(), &extra).await?;
        // Connected and served: the default handlers answer.
        let ack = client.join(&format!("user:{}", user_of(name))).await?;
        assert_eq!(ack, json!([true]), "{name}");
    }
    let failures = one.scrape().await?;
    for reason in ["no_token", "bad_signature", "expired"] {
        let sample = format!("socketio_auth_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_sample(&failures, &sample), Some(0.0), "{sample}");
    }
    Ok(())
}

/// The user of a case of the test above: joining one's own user room is
/// allowed whatever the claims.
fn user_of(case: &str) -> &'static str {
    match &case[..2] {
        "hs" => "alice",
        "rs" => "bob",
        "es" => "carol",
        _ => "dave",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_with_their_reason() -> anyhow::Result<()> {
    let kit = TokenKit::new().await?;
    let (one, two) = gateways(&kit).await?;
    let rsa_public = kit.public_key("rsa").to_string_lossy().into_owned();
    let ec_public = kit.public_key("ec").to_string_lossy().into_owned();
    let ed = kit.private_key("ed").to_string_lossy().into_owned();
    let with = |patch: Value| {
        let mut claims = valid_claims("mallory");
        if let (Some(claims), Some(patch)) = (claims.as_object_mut(), patch.as_object()) {
            claims.extend(patch.clone());
        }
        claims
    };
    let specs = json!([
        {"alg": "HS256", "secret": "another secret", "claims": with(json!({}))},
        hs(with(json!({"exp": {"in": -60}}))),
        hs(with(json!({"nbf": {"in": 600}}))),
        hs(with(json!({"iss": "someone else"}))),
        hs(with(json!({"aud": "other services"}))),
        {"alg": "none", "claims": with(json!({}))},
        {"alg": "HS256", "hmacKeyFile": rsa_public, "claims": with(json!({}))},
        {"alg": "EdDSA", "keyFile": ed, "claims": with(json!({}))},
        hs(json!({"exp": {"in": 600}, "iss": "issuer", "aud": "gateways"})),
        {"alg": "HS256", "hmacKeyFile": ec_public, "claims": with(json!({}))},
    ]);
    let tokens = kit.sign(&specs).await?;
    let cases: Vec<(&str, &GatewayProcess, Option<&str>, &str)> = vec![
        ("missing", &one, None, "unauthorized: no token"),
        (
            "malformed",
            &one,
            Some("not.a-token"),
            "unauthorized: malformed token",
        ),
        (
            "wrong-signature",
            &one,
            Some(&tokens[0]),
            "unauthorized: bad signature",
        ),
        (
            "expired",
            &one,
            Some(&tokens[1]),
            "unauthorized: token expired",
        ),
        (
            "not-yet-valid",
            &one,
            Some(&tokens[2]),
            "unauthorized: token not yet valid",
        ),
        (
            "wrong-issuer",
            &one,
            Some(&tokens[3]),
            "unauthorized: wrong issuer",
        ),
        (
            "wrong-audience",
            &one,
            Some(&tokens[4]),
            "unauthorized: wrong audience",
        ),
        (
            "alg-none",
            &one,
            Some(&tokens[5]),
            "unauthorized: algorithm none not allowed",
        ),
        // The RSA key is configured, so HS tokens verify against the secret
        // only: signed with the public key's bytes, the signature is bad.
        (
            "hs-with-rsa-public-key",
            &one,
            Some(&tokens[6]),
            "unauthorized: bad signature",
        ),
        (
            "eddsa-not-configured",
            &one,
            Some(&tokens[7]),
            "unauthorized: algorithm EdDSA not allowed",
        ),
        (
            "no-sub",
            &one,
            Some(&tokens[8]),
            "unauthorized: missing claim sub",
        ),
        // Gateway 2 has no secret at all: HS is not an algorithm it takes.
        (
            "hs-with-ec-public-key",
            &two,
            Some(&tokens[9]),
            "unauthorized: algorithm HS256 not allowed",
        ),
    ];
    for (name, gateway, token, reason) in &cases {
        let mut extra = Vec::new();
        let auth;
        if let Some(token) = token {
            auth = auth_arg(token);
            extra.extend(["--auth", auth.as_str()]);
        }
        let message = NodePeer::refused_client(name, &gateway.url(), &extra).await?;
        assert_eq!(message, *reason, "{name}");
    }
    // Long-polling and socket.io-client 2 (Engine.IO 3) are told too.
    let expired = auth_arg(&tokens[1]);
    let polling = NodePeer::refused_client(
        "expired-polling",
        &one.url(),
        &["--transports", "polling", "--auth", &expired],
    )
    .await?;
    assert_eq!(polling, "unauthorized: token expired");
    for transport in ["websocket", "polling"] {
        let v2 = NodePeer::refused_client(
            &format!("expired-v2-{transport}"),
            &one.url(),
            &["--v2", "--transports", transport, "--query", &expired],
        )
        .await?;
        assert_eq!(v2, "unauthorized: token expired", "{transport}");
    }

    let failures = one.scrape().await?;
    for (reason, count) in [
        ("no_token", 1.0),
        ("malformed", 1.0),
        ("bad_signature", 2.0),
        ("expired", 4.0),
        ("not_yet_valid", 1.0),
        ("issuer", 1.0),
        ("audience", 1.0),
        ("algorithm", 2.0),
        ("missing_claim", 1.0),
    ] {
        let sample = format!("socketio_auth_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(metric_sample(&failures, &sample), Some(count), "{sample}");
    }
    // No handler ran for a refused socket.
    assert_eq!(
        metric_sample(&failures, "socketio_connections_total"),
        Some(0.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_disconnects_its_socket() -> anyhow::Result<()> {
    let gateway = GatewayProcess::start(
        "auth-expiry",
        &[
            ("GATEWAY_AUTH__JWT_SECRET", SECRET),
            ("GATEWAY_AUTH__LEEWAY_S", "0"),
        ],
    )
    .await?;
    let kit = TokenKit::new().await?;
    let tokens = kit
        .sign(&json!([
            hs(json!({"sub": "brief", "exp": {"in": 2}})),
            hs(json!({"sub": "lasting", "exp": {"in": 600}})),
        ]))
        .await?;
    let mut brief =
        NodePeer::client("brief", &gateway.url(), &["--auth", &auth_arg(&tokens[0])]).await?;
    let mut lasting = NodePeer::client(
        "lasting",
        &gateway.url(),
        &["--auth", &auth_arg(&tokens[1])],
    )
    .await?;
    let line = brief.expect_event("$disconnect", EVENT).await?;
    assert_eq!(line["args"][0], "io server disconnect", "{line}");
    gateway
        .wait_metric(
            "socketio_limit_disconnects_total{reason=\"token_expired\"}",
            |v| v == 1.0,
            EVENT,
        )
        .await?;
    // The other socket stays.
    assert_eq!(lasting.join("user:lasting").await?, json!([true]));
    Ok(())
}
