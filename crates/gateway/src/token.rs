//! Where a client's token is, in the order clients send it: the Socket.IO
//! CONNECT auth payload `{"token": "..."}` (socket.io-client 3 and 4), the
//! handshake's `Authorization: Bearer ...` header, then the `token` query
//! parameter (socket.io-client 2 has no auth payload and sends `query`).

use std::borrow::Cow;

/// The token of a handshake, if any. An empty value counts as none.
pub fn find_token<'a>(
    auth: Option<&'a serde_json::Value>,
    authorization: Option<&'a str>,
    query: Option<&'a str>,
) -> Option<Cow<'a, str>> {
    let from_auth = auth
        .and_then(|auth| auth.get("token"))
        .and_then(|token| token.as_str())
        .map(Cow::Borrowed);
    let from_header = || {
        let value = authorization?.trim();
        let (scheme, token) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| Cow::Borrowed(token.trim()))
    };
    let from_query = || {
        form_urlencoded::parse(query?.as_bytes())
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value)
    };
    [from_auth, from_header(), from_query()]
        .into_iter()
        .flatten()
        .find(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::find_token;
    use serde_json::json;

    #[test]
    fn first_place_wins_and_empty_is_none() {
        let auth = json!({"token": "from-auth"});
        let empty = json!({"token": ""});
        let other = json!({"user": "x"});
        let q = Some("EIO=4&transport=polling&token=from%20query");
        let table = [
            (
                Some(&auth),
                Some("Bearer from-header"),
                q,
                Some("from-auth"),
            ),
            (None, Some("Bearer from-header"), q, Some("from-header")),
            (
                Some(&empty),
                Some("bearer  from-header "),
                q,
                Some("from-header"),
            ),
            (Some(&other), Some("Basic dXNlcg=="), q, Some("from query")),
            (None, None, Some("EIO=4&token="), None),
            (None, Some("Bearer"), None, None),
            (None, None, None, None),
        ];
        for (auth, header, query, expected) in table {
            assert_eq!(
                find_token(auth, header, query).as_deref(),
                expected,
                "{auth:?} {header:?} {query:?}"
            );
        }
    }
}
