//! Gives every request a head of its own before socketioxide keeps it.
//!
//! hyper parses a request's URI and header values as slices of its read
//! buffer (8 to 16 KB) rather than copies. engineioxide and socketioxide keep
//! the request head of every session for its whole life (`req_parts`), so an
//! idle WebSocket pinned that whole buffer: about half of the gateway's
//! memory per connection. Copying the few hundred bytes of URI and headers
//! into their own allocations lets the buffer go once hyper is done with the
//! connection. The request's extensions (hyper's upgrade handle among them)
//! are left as they are, except axum's [`OriginalUri`], a clone of the
//! buffer-backed URI, which gets the copy too.

use axum::extract::{OriginalUri, Request};
use http::header::HeaderMap;
use http::{HeaderValue, Uri};

/// axum `map_request` middleware: the same request, with a detached head.
pub(crate) async fn detach_request_head(mut request: Request) -> Request {
    let headers = request.headers();
    let mut detached = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // A value hyper accepted is a valid header value; the clone (still
        // shared with the buffer) only stands in should `http` ever disagree.
        let copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        detached.append(name.clone(), copy);
    }
    *request.headers_mut() = detached;
    if let Ok(uri) = Uri::try_from(request.uri().to_string()) {
        if let Some(original) = request.extensions_mut().get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        *request.uri_mut() = uri;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    #[tokio::test]
    async fn keeps_uri_headers_and_extensions() {
        #[derive(Clone, PartialEq, Debug)]
        struct Marker(u8);
        let request = Request::builder()
            .uri("/socket.io/?EIO=4&transport=websocket")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("x-forwarded-for", "10.0.0.1")
            .header("x-forwarded-for", "10.0.0.2")
            .extension(Marker(7))
            .body(Body::empty())
            .expect("request");
        let detached = detach_request_head(request).await;
        assert_eq!(
            detached.uri().to_string(),
            "/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            detached.headers()["sec-websocket-key"],
            "dGhlIHNhbXBsZSBub25jZQ=="
        );
        let forwarded: Vec<_> = detached
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .collect();
        assert_eq!(forwarded, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(detached.extensions().get::<Marker>(), Some(&Marker(7)));
    }
}
