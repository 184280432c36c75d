//! The one HTTP client of the hooks: pooled keep-alive connections (http
//! and https), a deadline on every call, the `X-Signature` HMAC of each
//! body, a bounded read of each answer, and the metrics of every call.
//! What an answer means is [`super::answer`]'s business; this module only
//! carries it.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use sha2::Sha256;
use tracing::{debug, warn, Instrument};

use super::answer::{NoAnswer, Outcome, Reply};

/// Which hook a call is for: the `hook` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// At a namespace CONNECT.
    Connect,
    /// For a client's event.
    Event,
    /// After a disconnect.
    Disconnect,
}

impl Hook {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Event => "event",
            Hook::Disconnect => "disconnect",
        }
    }

    const ALL: [Hook; 3] = [Hook::Connect, Hook::Event, Hook::Disconnect];
}

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `hooks.tls_ca_file` could not be read.
    #[error("hooks.tls_ca_file: cannot read {path}: {source}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// `hooks.tls_ca_file` holds no certificate reqwest can use.
    #[error("hooks.tls_ca_file: {path} holds no usable PEM certificate: {source}")]
    CaCertificate {
        /// The file.
        path: String,
        /// Why.
        source: reqwest::Error,
    },
    /// reqwest refused its settings.
    #[error("hooks: cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// The CA certificates of the PEM file at `path`; at least one.
fn ca_certificates(path: &str) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
        path: path.to_owned(),
        source,
    })?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
        ClientError::CaCertificate {
            path: path.to_owned(),
            source,
        }
    })?;
    if certificates.is_empty() {
        // from_pem_bundle skips what is not a certificate, a key among
        // them; an empty trust list would make every https call fail.
        return Err(ClientError::CaFile {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no `BEGIN CERTIFICATE` block",
            ),
        });
    }
    Ok(certificates)
}

/// The hooks' metrics.
#[derive(Debug, Clone)]
pub struct HookMetrics {
    /// `gateway_hook_requests_total{hook,outcome}`.
    pub requests: IntCounterVec,
    /// `gateway_hook_duration_seconds{hook}`.
    pub duration: HistogramVec,
    /// `gateway_hook_inflight{hook}`: calls waiting for their answer.
    pub inflight: IntGaugeVec,
    /// `gateway_hook_dropped_total{hook,reason}`: events refused with
    /// "backend busy", disconnects given up after their retries.
    pub dropped: IntCounterVec,
}

impl HookMetrics {
    /// Registers the metrics in `registry`, every series at zero.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "gateway_hook_requests_total",
                "Calls to the backend's hooks by outcome",
            ),
            &["hook", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "gateway_hook_duration_seconds",
                "Time from a hook call to its answer (or its failure)",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["hook"],
        )?;
        let inflight = IntGaugeVec::new(
            Opts::new("gateway_hook_inflight", "Hook calls waiting for an answer"),
            &["hook"],
        )?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "gateway_hook_dropped_total",
                "Hook calls not made or given up: events over hooks.max_inflight (busy), disconnects whose retries all failed (gave_up)",
            ),
            &["hook", "reason"],
        )?;
        for hook in Hook::ALL {
            for outcome in Outcome::LABELS {
                requests.with_label_values(&[hook.label(), outcome]);
            }
            duration.with_label_values(&[hook.label()]);
            inflight.with_label_values(&[hook.label()]);
        }
        dropped.with_label_values(&["event", "busy"]);
        dropped.with_label_values(&["disconnect", "gave_up"]);
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(inflight.clone()),
            Box::new(dropped.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(Self {
            requests,
            duration,
            inflight,
            dropped,
        })
    }
}

/// The pooled client and what every call needs.
#[derive(Debug, Clone)]
pub struct HookClient {
    http: reqwest::Client,
    secret: Option<Vec<u8>>,
    timeout: Duration,
    max_answer_bytes: usize,
    /// Its metrics.
    pub metrics: HookMetrics,
}

impl HookClient {
    /// A client whose calls last at most `timeout` and read answers of at
    /// most `max_answer_bytes`, signed with `secret` when given, trusting
    /// the certificates of `tls_ca_file` beside the built-in roots.
    pub fn new(
        timeout: Duration,
        secret: Option<&str>,
        tls_ca_file: Option<&str>,
        max_answer_bytes: usize,
        metrics: HookMetrics,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("socketio-gateway/", env!("CARGO_PKG_VERSION")));
        for certificate in tls_ca_file
            .map(ca_certificates)
            .transpose()?
            .unwrap_or_default()
        {
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build()?;
        Ok(Self {
            http,
            secret: secret.map(|s| s.as_bytes().to_vec()),
            timeout,
            max_answer_bytes,
            metrics,
        })
    }

    /// POSTs `body` to `url` and hands the answer (or why there is none)
    /// to `decide`, whose outcome is counted with the call's duration.
    pub async fn call<T>(
        &self,
        hook: Hook,
        url: &str,
        body: &serde_json::Value,
        decide: impl FnOnce(Reply<'_>) -> (T, Outcome),
    ) -> T {
        let span = tracing::debug_span!("hook", hook = hook.label(), url);
        let started = Instant::now();
        let inflight = self.metrics.inflight.with_label_values(&[hook.label()]);
        inflight.inc();
        let answer = self.post(url, body).instrument(span.clone()).await;
        inflight.dec();
        let elapsed = started.elapsed();
        let reply = match &answer {
            Ok((status, bytes)) => Ok((*status, bytes.as_slice())),
            Err(no_answer) => Err(no_answer),
        };
        let (decision, outcome) = decide(reply);
        self.metrics
            .requests
            .with_label_values(&[hook.label(), outcome.label()])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[hook.label()])
            .observe(elapsed.as_secs_f64());
        let _entered = span.enter();
        match (&answer, outcome) {
            (_, Outcome::Ok | Outcome::Refused) => {
                debug!(outcome = outcome.label(), ?elapsed, "hook answered");
            }
            (Ok((status, _)), _) => {
                warn!(
                    outcome = outcome.label(),
                    status,
                    ?elapsed,
                    "hook call failed"
                );
            }
            (Err(no_answer), _) => {
                warn!(
                    outcome = outcome.label(),
                    ?no_answer,
                    ?elapsed,
                    "hook call failed"
                );
            }
        }
        decision
    }

    async fn post(&self, url: &str, body: &serde_json::Value) -> Result<(u16, Vec<u8>), NoAnswer> {
        // serde_json writes a `Value` without failing.
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut request = self
            .http
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            request = request.header("x-signature", signature(secret, &bytes));
        }
        let read = async {
            let mut response = request.body(bytes).send().await.map_err(no_answer)?;
            let status = response.status().as_u16();
            let mut answer = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(no_answer)? {
                if answer.len() + chunk.len() > self.max_answer_bytes {
                    return Err(NoAnswer::TooLarge);
                }
                answer.extend_from_slice(&chunk);
            }
            Ok((status, answer))
        };
        // reqwest's own timeout covers the body too; this one is a backstop.
        tokio::time::timeout(self.timeout + Duration::from_millis(100), read)
            .await
            .unwrap_or(Err(NoAnswer::Timeout))
    }
}

fn no_answer(err: reqwest::Error) -> NoAnswer {
    if err.is_timeout() {
        return NoAnswer::Timeout;
    }
    // The chain says why (refused, reset, DNS, certificate).
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    NoAnswer::Unreachable(text)
}

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub's and Pusher's webhooks
/// sign.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn signature_is_the_rfc_4231_hmac() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
