//! No token, however built, makes verification or claim parsing panic; a
//! token signed with the configured secret verifies whatever its extra
//! claims hold.

use base64::Engine as _;
use gateway::auth::{AuthConfig, Claims, Verifier};
use gateway::token::find_token;
use proptest::prelude::*;

const SECRET: &str = "property secret";

fn verifier() -> Verifier {
    let config = AuthConfig {
        jwt_secret: Some(SECRET.into()),
        jwt_audience: Some("aud".into()),
        ..AuthConfig::default()
    };
    match Verifier::from_config(&config) {
        Ok(Some(verifier)) => verifier,
        other => panic!("no verifier: {other:?}"),
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("sub".to_owned()),
                    Just("exp".to_owned()),
                    Just("rooms".to_owned()),
                    Just("alg".to_owned()),
                    Just("aud".to_owned()),
                    ".{0,6}".prop_map(String::from)
                ],
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = verifier().verify(&text);
        let auth = serde_json::json!({ "token": text });
        let _ = find_token(Some(&auth), Some(&text), Some(&text));
    }

    #[test]
    fn arbitrary_headers_and_claims_never_panic(
        header in json_value(),
        claims in json_value(),
        signature in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(&signature)
        );
        let _ = verifier().verify(&token);
        let _ = Claims::from_value(claims);
    }

    #[test]
    fn signed_tokens_verify_whatever_else_they_carry(extra in json_value(), sub in "[a-z]{1,12}") {
        let mut claims = serde_json::json!({
            "sub": sub, "exp": jsonwebtoken::get_current_timestamp() + 600, "aud": "aud"
        });
        if let (Some(map), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
            for (k, v) in extra {
                if !["sub", "exp", "aud", "nbf", "iss", "rooms", "publish", "broadcast"].contains(&k.as_str()) {
                    map.insert(k, v);
                }
            }
        }
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let verified = verifier().verify(&token).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(verified.sub, sub);
    }
}
