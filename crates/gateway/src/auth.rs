//! Who a client is: the JWT of its handshake, verified against the
//! configured key (`auth.jwt_secret` for HS256/384/512, and/or
//! `auth.jwt_public_key_file` for RS*, PS*, ES256/384 or EdDSA), with
//! `exp`, `nbf`, and `iss`/`aud` when configured.
//!
//! The decision is pure: [`Verifier::verify`] takes the token and answers
//! the claims or an [`AuthError`] whose text is what the refused client
//! reads in its `connect_error`. Only the algorithms of the configured keys
//! are accepted, so `alg: none`, or an HS token signed with the public
//! key's bytes, cannot pass.

use std::path::PathBuf;

use base64::Engine as _;
use jsonwebtoken::{errors::ErrorKind, Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

/// The `[auth]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Shared secret of HS256/384/512 tokens.
    pub jwt_secret: Option<String>,
    /// PEM public key of RS*/PS*/ES*/EdDSA tokens.
    pub jwt_public_key_file: Option<PathBuf>,
    /// Required `iss`, when set.
    pub jwt_issuer: Option<String>,
    /// Required `aud`, when set.
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// Whether a socket without a token is refused (with a key set).
    pub required: bool,
    /// Whether a socket is disconnected when its token expires.
    pub disconnect_on_expiry: bool,
    /// Prefix of the room every socket of a user joins: `user:<sub>`.
    pub user_room_prefix: String,
    /// Rooms a socket may join when its token has no `rooms` claim.
    pub default_rooms: Option<Vec<String>>,
    /// Rooms a socket may publish to when its token has no `publish` claim.
    pub default_publish: Option<Vec<String>>,
    /// Whether a socket may relay `message` when its token has no
    /// `broadcast` claim.
    pub default_broadcast: Option<bool>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            leeway_s: 30,
            required: true,
            disconnect_on_expiry: true,
            user_room_prefix: "user:".into(),
            default_rooms: None,
            default_publish: None,
            default_broadcast: None,
        }
    }
}

impl AuthConfig {
    /// Why a value cannot be used: `(key, reason)`. An empty secret, key
    /// path, issuer or audience is refused rather than read as unset: it
    /// would turn authentication (or one of its checks) off unnoticed.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let empty = |value: Option<&str>| value.is_some_and(|v| v.trim().is_empty());
        for (key, value) in [
            ("auth.jwt_secret", self.jwt_secret.as_deref()),
            ("auth.jwt_issuer", self.jwt_issuer.as_deref()),
            ("auth.jwt_audience", self.jwt_audience.as_deref()),
            (
                "auth.jwt_public_key_file",
                self.jwt_public_key_file.as_ref().and_then(|p| p.to_str()),
            ),
        ] {
            if empty(value) {
                return Err((key, "is set but empty (leave it unset instead)".into()));
            }
        }
        if self.user_room_prefix.is_empty() {
            return Err(("auth.user_room_prefix", "must not be empty".into()));
        }
        Ok(())
    }

    /// Blank items of the default lists are dropped (`a,,b` or a trailing
    /// comma).
    pub fn normalize(&mut self) {
        for list in [&mut self.default_rooms, &mut self.default_publish]
            .into_iter()
            .flatten()
        {
            list.retain(|item| !item.trim().is_empty());
        }
    }

    /// Whether any key is configured (auth on).
    pub fn enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key_file.is_some()
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The public key file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The configured path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a PEM RSA, EC or Ed25519 public key.
    #[error("{0} is not a PEM RSA, EC or Ed25519 public key")]
    NotAKey(PathBuf),
    /// The secret is empty.
    #[error("the secret is empty")]
    EmptySecret,
}

/// Why a token was refused. Its text is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the auth payload, the header or the query.
    #[error("unauthorized: no token")]
    NoToken,
    /// Not three base64url parts with a JSON header.
    #[error("unauthorized: malformed token")]
    Malformed,
    /// `alg` is none, unknown, or not one of the configured keys'.
    #[error("unauthorized: algorithm {0} not allowed")]
    Algorithm(String),
    /// The signature does not match.
    #[error("unauthorized: bad signature")]
    BadSignature,
    /// `exp` is past.
    #[error("unauthorized: token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("unauthorized: token not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("unauthorized: wrong issuer")]
    Issuer,
    /// `aud` is not the configured audience.
    #[error("unauthorized: wrong audience")]
    Audience,
    /// A required claim (`exp`, `sub`) is absent.
    #[error("unauthorized: missing claim {0}")]
    MissingClaim(String),
    /// A claim has the wrong type (`sub` not a non-empty string, `rooms` not
    /// a list of strings...).
    #[error("unauthorized: bad claims: {0}")]
    BadClaims(String),
}

impl AuthError {
    /// The `reason` label of `socketio_auth_failures_total`.
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::NoToken => "no_token",
            AuthError::Malformed => "malformed",
            AuthError::Algorithm(_) => "algorithm",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::Issuer => "issuer",
            AuthError::Audience => "audience",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::BadClaims(_) => "bad_claims",
        }
    }

    /// Every label, to export them at zero.
    pub const LABELS: [&'static str; 10] = [
        "no_token",
        "malformed",
        "algorithm",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "issuer",
        "audience",
        "missing_claim",
        "bad_claims",
    ];
}

/// What the gateway reads of a verified token; `all` keeps every claim, for
/// the socket's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: Option<u64>,
    /// Rooms the socket may join (names or glob patterns).
    pub rooms: Option<Vec<String>>,
    /// Rooms the socket may publish to.
    pub publish: Option<Vec<String>>,
    /// Whether its `message` events are relayed.
    pub broadcast: Option<bool>,
    /// The whole claim set.
    pub all: serde_json::Value,
}

impl Claims {
    /// The typed claims of a claim set, or why they cannot be used.
    pub fn from_value(all: serde_json::Value) -> Result<Self, AuthError> {
        #[derive(Deserialize)]
        struct Typed {
            sub: Option<serde_json::Value>,
            exp: Option<u64>,
            rooms: Option<Vec<String>>,
            publish: Option<Vec<String>>,
            broadcast: Option<bool>,
        }
        let typed =
            Typed::deserialize(&all).map_err(|err| AuthError::BadClaims(err.to_string()))?;
        let sub = match typed.sub {
            None => return Err(AuthError::MissingClaim("sub".into())),
            Some(serde_json::Value::String(sub)) if !sub.is_empty() => sub,
            Some(_) => {
                return Err(AuthError::BadClaims(
                    "sub must be a non-empty string".into(),
                ))
            }
        };
        Ok(Self {
            sub,
            exp: typed.exp,
            rooms: typed.rooms,
            publish: typed.publish,
            broadcast: typed.broadcast,
            all,
        })
    }
}

/// Verifies tokens against the configured keys.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<(AlgorithmFamily, DecodingKey)>,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let families: Vec<_> = self.keys.iter().map(|(family, _)| family).collect();
        f.debug_struct("Verifier")
            .field("families", &families)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier of `config`, `None` when no key is configured.
    pub fn from_config(config: &AuthConfig) -> Result<Option<Self>, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.jwt_secret {
            if secret.is_empty() {
                return Err(KeyError::EmptySecret);
            }
            keys.push((
                AlgorithmFamily::Hmac,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = &config.jwt_public_key_file {
            let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            keys.push(public_key(&pem).ok_or_else(|| KeyError::NotAKey(path.clone()))?);
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = keys
            .iter()
            .flat_map(|(family, _)| family.algorithms().iter().copied())
            .collect();
        validation.leeway = config.leeway_s;
        validation.validate_nbf = true;
        // `sub` is checked by `Claims::from_value`, which names what is wrong with it.
        validation.set_required_spec_claims(&["exp"]);
        match &config.jwt_issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &config.jwt_audience {
            Some(audience) => validation.set_audience(&[audience]),
            // Without a configured audience an `aud` claim is not checked
            // (jsonwebtoken would refuse every token that has one).
            None => validation.validate_aud = false,
        }
        Ok(Some(Self { keys, validation }))
    }

    /// The claims of `token`, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let alg = header_algorithm(token)?;
        let Some((_, key)) = self
            .keys
            .iter()
            .find(|(family, _)| family.algorithms().contains(&alg))
        else {
            return Err(AuthError::Algorithm(format!("{alg:?}")));
        };
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map_err(|err| refusal(err.into_kind()))?;
        Claims::from_value(data.claims)
    }
}

/// A PEM public key of any asymmetric family jsonwebtoken verifies.
fn public_key(pem: &[u8]) -> Option<(AlgorithmFamily, DecodingKey)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((AlgorithmFamily::Rsa, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((AlgorithmFamily::Ec, key));
    }
    DecodingKey::from_ed_pem(pem)
        .ok()
        .map(|key| (AlgorithmFamily::Ed, key))
}

/// The `alg` of a token's header, read before anything is verified, so an
/// algorithm jsonwebtoken does not know (`none`) is named in the refusal.
fn header_algorithm(token: &str) -> Result<Algorithm, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| AuthError::Malformed)?;
    let Some(alg) = header.get("alg").and_then(|alg| alg.as_str()) else {
        return Err(AuthError::Malformed);
    };
    alg.parse::<Algorithm>()
        .map_err(|_| AuthError::Algorithm(alg.chars().take(16).collect()))
}

fn refusal(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
        ErrorKind::InvalidClaimFormat(claim) => AuthError::BadClaims(claim),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::Algorithm("of the header".into())
        }
        _ => AuthError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "a secret of the test";

    fn verifier(config: AuthConfig) -> Verifier {
        match Verifier::from_config(&config) {
            Ok(Some(verifier)) => verifier,
            other => panic!("no verifier: {other:?}"),
        }
    }

    fn hs(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        encode(&Header::new(Algorithm::HS256), &claims, &key).expect("encode")
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn decisions_on_hs256_tokens() {
        let config = AuthConfig {
            jwt_secret: Some(SECRET.into()),
            jwt_issuer: Some("us".into()),
            jwt_audience: Some("gateway".into()),
            leeway_s: 0,
            ..AuthConfig::default()
        };
        let verifier = verifier(config);
        let base = json!({"sub": "alice", "exp": now() + 60, "iss": "us", "aud": "gateway"});
        let with = |patch: serde_json::Value| {
            let mut claims = base.clone();
            if let (Some(claims), Some(patch)) = (claims.as_object_mut(), patch.as_object()) {
                for (k, v) in patch {
                    if v.is_null() {
                        claims.remove(k);
                    } else {
                        claims.insert(k.clone(), v.clone());
                    }
                }
            }
            hs(claims)
        };
        let table: Vec<(String, Result<&str, AuthError>)> = vec![
            (with(json!({})), Ok("alice")),
            (with(json!({"exp": now() - 5})), Err(AuthError::Expired)),
            (
                with(json!({"nbf": now() + 60})),
                Err(AuthError::NotYetValid),
            ),
            (with(json!({"iss": "them"})), Err(AuthError::Issuer)),
            (with(json!({"aud": "other"})), Err(AuthError::Audience)),
            (
                with(json!({"exp": null})),
                Err(AuthError::MissingClaim("exp".into())),
            ),
            (
                with(json!({"sub": null})),
                Err(AuthError::MissingClaim("sub".into())),
            ),
            (
                with(json!({"sub": 7})),
                Err(AuthError::BadClaims(
                    "sub must be a non-empty string".into(),
                )),
            ),
            ("not a token".into(), Err(AuthError::Malformed)),
            ("a.b.c".into(), Err(AuthError::Malformed)),
            (
                format!("{}x", with(json!({}))),
                Err(AuthError::BadSignature),
            ),
        ];
        for (token, expected) in table {
            let got = verifier.verify(&token).map(|claims| claims.sub);
            assert_eq!(got.as_deref().map_err(Clone::clone), expected, "{token}");
        }
    }

    #[test]
    fn only_the_configured_algorithms_pass() {
        let verifier = verifier(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            ..AuthConfig::default()
        });
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let claims = b64(json!({"sub": "mallory", "exp": now() + 60}));
        let none = format!("{}.{claims}.", b64(json!({"alg": "none", "typ": "JWT"})));
        assert_eq!(
            verifier.verify(&none),
            Err(AuthError::Algorithm("none".into()))
        );
        let rs = format!("{}.{claims}.c2ln", b64(json!({"alg": "RS256"})));
        assert_eq!(
            verifier.verify(&rs),
            Err(AuthError::Algorithm("RS256".into()))
        );
        let no_alg = format!("{}.{claims}.c2ln", b64(json!({"typ": "JWT"})));
        assert_eq!(verifier.verify(&no_alg), Err(AuthError::Malformed));
    }

    #[test]
    fn claims_are_typed_and_kept_whole() {
        let verifier = verifier(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            ..AuthConfig::default()
        });
        let token = hs(json!({
            "sub": "bob", "exp": now() + 60, "rooms": ["chat:*"], "publish": ["chat:general"],
            "broadcast": true, "name": "Bob"
        }));
        let claims = verifier.verify(&token).expect("valid");
        assert_eq!(claims.rooms, Some(vec!["chat:*".to_owned()]));
        assert_eq!(claims.publish, Some(vec!["chat:general".to_owned()]));
        assert_eq!(claims.broadcast, Some(true));
        assert_eq!(claims.all["name"], "Bob");
        let bad = hs(json!({"sub": "bob", "exp": now() + 60, "rooms": "chat:*"}));
        assert!(matches!(
            verifier.verify(&bad),
            Err(AuthError::BadClaims(_))
        ));
    }

    #[test]
    fn no_key_no_verifier_and_bad_keys_are_errors() {
        assert!(matches!(
            Verifier::from_config(&AuthConfig::default()),
            Ok(None)
        ));
        let empty = AuthConfig {
            jwt_secret: Some(String::new()),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::from_config(&empty),
            Err(KeyError::EmptySecret)
        ));
        let dir = std::env::temp_dir().join(format!("gateway-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("not-a-key.pem");
        std::fs::write(&file, "hello").expect("write");
        let bad = AuthConfig {
            jwt_public_key_file: Some(file.clone()),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::from_config(&bad),
            Err(KeyError::NotAKey(_))
        ));
        let missing = AuthConfig {
            jwt_public_key_file: Some(dir.join("missing.pem")),
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::from_config(&missing),
            Err(KeyError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
