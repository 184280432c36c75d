//! The tokens of the load generator's clients, for gateways with
//! authentication on: HS256, signed with the gateways' secret, one user per
//! client (`loadgen-<index>`), allowed everything the scenarios do (relay
//! `message`, join and publish to any room), valid for a day.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

/// How long a client's token is valid, in seconds.
const VALIDITY_S: u64 = 24 * 3600;

/// The CONNECT auth payload of client `index`: `{"token": "<jwt>"}`.
pub fn connect_auth(secret: &str, index: usize) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = serde_json::json!({
        "sub": format!("loadgen-{index}"),
        "exp": jsonwebtoken::get_current_timestamp() + VALIDITY_S,
        "rooms": ["*"],
        "publish": ["*"],
        "broadcast": true,
    });
    let key = EncodingKey::from_secret(secret.as_bytes());
    let token = encode(&Header::new(Algorithm::HS256), &claims, &key)?;
    Ok(serde_json::json!({ "token": token }).to_string())
}

#[cfg(test)]
mod tests {
    use super::connect_auth;

    #[test]
    fn payload_carries_a_three_part_token() {
        let auth = connect_auth("s", 7).expect("encode");
        let value: serde_json::Value = serde_json::from_str(&auth).expect("json");
        let token = value["token"].as_str().unwrap_or_default();
        assert_eq!(token.split('.').count(), 3, "{token}");
    }
}
