//! The `[hooks]` section: where the backend's hooks are, which events go
//! to it, and how long and how much the gateway waits for it. Checked at
//! start, so a typo in a URL stops the gateway instead of refusing every
//! client later.

use serde::Deserialize;

/// Headers of the handshake forwarded to the connect hook by default.
pub const DEFAULT_FORWARD_HEADERS: &str = "cookie,authorization,user-agent,x-forwarded-for,origin";

/// The `[hooks]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct HooksConfig {
    /// Called at each namespace CONNECT; its answer admits or refuses.
    pub connect_url: Option<String>,
    /// Called with the events named in `events`; its answer is the ack.
    pub event_url: Option<String>,
    /// Called after each disconnect.
    pub disconnect_url: Option<String>,
    /// Events sent to `event_url`; `*` is every event without a built-in
    /// handler.
    pub events: Vec<String>,
    /// Handshake headers (lower case) the connect hook receives.
    pub forward_headers: Vec<String>,
    /// Bound of each call, in milliseconds.
    pub timeout_ms: u64,
    /// Events waiting for or in a call to `event_url`, per gateway.
    pub max_inflight: usize,
    /// Key of the `X-Signature` HMAC, when set.
    pub secret: Option<String>,
    /// PEM file of CA certificates trusted for `https://` hooks, beside
    /// the built-in web roots: a backend with a private CA or a
    /// self-signed certificate.
    pub tls_ca_file: Option<String>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        Self {
            connect_url: None,
            event_url: None,
            disconnect_url: None,
            events: Vec::new(),
            forward_headers: DEFAULT_FORWARD_HEADERS
                .split(',')
                .map(str::to_owned)
                .collect(),
            timeout_ms: 5000,
            max_inflight: 256,
            secret: None,
            tls_ca_file: None,
        }
    }
}

/// Longest wait for a backend: a minute is already a stuck client.
const MAX_TIMEOUT_MS: u64 = 60_000;

impl HooksConfig {
    /// Trims the lists and drops blank items; header names in lower case.
    pub fn normalize(&mut self) {
        for list in [&mut self.events, &mut self.forward_headers] {
            list.iter_mut()
                .for_each(|item| *item = item.trim().to_owned());
            list.retain(|item| !item.is_empty());
        }
        self.forward_headers
            .iter_mut()
            .for_each(|name| name.make_ascii_lowercase());
        for optional in [
            &mut self.connect_url,
            &mut self.event_url,
            &mut self.disconnect_url,
            &mut self.tls_ca_file,
        ] {
            if optional.as_deref().is_some_and(|u| u.trim().is_empty()) {
                *optional = None;
            }
        }
    }

    /// Why a value cannot be used: `(key, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, url) in [
            ("hooks.connect_url", &self.connect_url),
            ("hooks.event_url", &self.event_url),
            ("hooks.disconnect_url", &self.disconnect_url),
        ] {
            if let Some(url) = url {
                check_url(url).map_err(|reason| (key, reason))?;
            }
        }
        match (&self.event_url, self.events.is_empty()) {
            (Some(_), true) => {
                return Err((
                    "hooks.events",
                    "is empty, so no event would reach hooks.event_url (`*` sends every event without a built-in handler)".into(),
                ))
            }
            (None, false) => {
                return Err((
                    "hooks.events",
                    "names events but hooks.event_url is not set".into(),
                ))
            }
            _ => {}
        }
        if let Some(name) = self
            .forward_headers
            .iter()
            .find(|name| http::HeaderName::from_bytes(name.as_bytes()).is_err())
        {
            return Err((
                "hooks.forward_headers",
                format!("`{name}` is not a header name"),
            ));
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err((
                "hooks.timeout_ms",
                format!("{} is outside 1..={MAX_TIMEOUT_MS}", self.timeout_ms),
            ));
        }
        if self.max_inflight == 0 {
            return Err(("hooks.max_inflight", "must be at least 1".into()));
        }
        if self.secret.as_deref().is_some_and(str::is_empty) {
            return Err((
                "hooks.secret",
                "is set but empty (leave it unset instead)".into(),
            ));
        }
        Ok(())
    }

    /// Whether any hook is configured.
    pub fn enabled(&self) -> bool {
        self.connect_url.is_some() || self.event_url.is_some() || self.disconnect_url.is_some()
    }

    /// Whether `event` goes to the backend.
    pub fn forwards(&self, event: &str) -> bool {
        self.event_url.is_some() && self.events.iter().any(|name| name == event)
    }

    /// Whether every event without a built-in handler goes to the backend.
    pub fn forwards_the_rest(&self) -> bool {
        self.forwards("*")
    }
}

fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|err| format!("`{url}` is not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` must be http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        let with = |edit: &dyn Fn(&mut HooksConfig)| {
            let mut config = HooksConfig::default();
            edit(&mut config);
            config.normalize();
            config.check().map_err(|(key, _)| key)
        };
        assert_eq!(with(&|_| {}), Ok(()));
        assert_eq!(
            with(&|c| c.connect_url = Some("https://backend:8443/connect".into())),
            Ok(())
        );
        assert_eq!(
            with(&|c| c.connect_url = Some("backend/connect".into())),
            Err("hooks.connect_url")
        );
        assert_eq!(
            with(&|c| c.disconnect_url = Some("ftp://backend/x".into())),
            Err("hooks.disconnect_url")
        );
        assert_eq!(with(&|c| c.connect_url = Some(" ".into())), Ok(()));
        assert_eq!(
            with(&|c| c.event_url = Some("http://b/e".into())),
            Err("hooks.events")
        );
        assert_eq!(
            with(&|c| c.events = vec!["chat".into()]),
            Err("hooks.events")
        );
        assert_eq!(
            with(&|c| {
                c.event_url = Some("http://b/e".into());
                c.events = vec![" chat".into(), "".into()];
            }),
            Ok(())
        );
        assert_eq!(
            with(&|c| c.forward_headers = vec!["x y".into()]),
            Err("hooks.forward_headers")
        );
        assert_eq!(with(&|c| c.timeout_ms = 0), Err("hooks.timeout_ms"));
        assert_eq!(with(&|c| c.max_inflight = 0), Err("hooks.max_inflight"));
        assert_eq!(
            with(&|c| c.secret = Some(String::new())),
            Err("hooks.secret")
        );
    }

    #[test]
    fn forwarded_events() {
        let mut config = HooksConfig {
            event_url: Some("http://b/e".into()),
            events: vec!["chat".into()],
            ..HooksConfig::default()
        };
        assert!(config.forwards("chat"));
        assert!(!config.forwards("other"));
        assert!(!config.forwards_the_rest());
        config.events.push("*".into());
        assert!(config.forwards_the_rest());
    }
}
