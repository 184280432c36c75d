//! Data-node URLs: parsing with the operator's TLS trust, the `host:port`
//! that identifies a server across topology changes, and URLs safe to log.

use std::time::Duration;

use fred::{
    interfaces::ClientLike,
    prelude::{Config, ServerConfig},
    types::config::{Server, TlsConfig},
};

use crate::error::Error;

/// One Redis server (master or replica) a client may use.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL without credentials, for logs and metrics.
    pub label: String,
    /// `host:port`, what identifies the server across topology changes.
    pub addr: String,
    /// fred's configuration for it, credentials and TLS included.
    pub config: Config,
}

impl Endpoint {
    /// The server of a configured URL, with `tls_ca_file` (PEM) as the only
    /// trusted CA when set.
    pub fn parse(url: &str, tls_ca_file: Option<&str>) -> Result<Self, Error> {
        let config = node_config(url, tls_ca_file)?;
        let addr = config
            .server
            .hosts()
            .first()
            .map(server_addr)
            .unwrap_or_else(|| redact(url));
        Ok(Self {
            label: redact(url),
            addr,
            config,
        })
    }

    /// The server at `host:port` with the credentials, database and TLS of
    /// `base`: how a server that the sentinels name is reached.
    pub fn at(base: &Config, host: &str, port: u16) -> Self {
        let mut config = base.clone();
        config.server = ServerConfig::new_centralized(host, port);
        let scheme = if config.uses_tls() { "rediss" } else { "redis" };
        Self {
            label: format!("{scheme}://{host}:{port}"),
            addr: format!("{host}:{port}"),
            config,
        }
    }
}

/// fred's configuration for a data-node URL, trusting only the PEM file
/// `tls_ca_file` when it is set (which needs a `rediss://` URL).
pub fn node_config(url: &str, tls_ca_file: Option<&str>) -> Result<Config, Error> {
    let invalid = |source| Error::InvalidUrl {
        url: redact(url),
        source,
    };
    let mut config = Config::from_url(url).map_err(invalid)?;
    if let Some(ca_file) = tls_ca_file {
        if config.tls.is_none() {
            return Err(invalid(fred::error::Error::new(
                fred::error::ErrorKind::Config,
                "tls_ca_file is set but the URL is not rediss://",
            )));
        }
        config.tls = Some(tls_with_ca_file(ca_file).map_err(invalid)?);
    }
    Ok(config)
}

/// A rustls client trusting only the certificates of the PEM file `path`.
fn tls_with_ca_file(path: &str) -> Result<TlsConfig, fred::error::Error> {
    use fred::rustls::pki_types::{pem::PemObject, CertificateDer};
    let tls_error = |message: String| fred::error::Error::new(fred::error::ErrorKind::Tls, message);
    let mut roots = fred::rustls::RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|err| tls_error(format!("cannot read the CA file {path}: {err}")))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|err| tls_error(format!("CA file {path}: {err}")))?;
        roots
            .add(certificate)
            .map_err(|err| tls_error(format!("CA file {path}: {err}")))?;
    }
    if roots.is_empty() {
        return Err(tls_error(format!("CA file {path} holds no certificate")));
    }
    let client = fred::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(fred::types::config::TlsConnector::from(client).into())
}

/// `host:port` of a server as fred names it; what [`Endpoint::addr`] holds.
pub fn server_addr(server: &Server) -> String {
    format!("{}:{}", server.host, server.port)
}

/// `host:port` of the server `client` is connected to, if it is.
pub fn connected_addr(client: &impl ClientLike) -> Option<String> {
    client.active_connections().first().map(server_addr)
}

/// `redis://user:pass@host:port/0` -> `redis://host:port/0`: URLs end up in
/// logs, metrics labels and error messages, passwords must not.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Closes a client without waiting on a server that may be dead: fred keeps
/// a connection open until told to quit.
pub fn quit_in_background<C: ClientLike + Clone + Send + Sync + 'static>(client: &C) {
    // No runtime left (process exit): the socket closes with the process.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let client = client.clone();
    runtime.spawn(async move {
        let _ = tokio::time::timeout(Duration::from_millis(500), client.quit()).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials() {
        for (url, shown) in [
            ("redis://user:secret@host:6379/2", "redis://host:6379/2"),
            ("rediss://:p@ss@host:1/0", "rediss://host:1/0"),
            ("redis://host:6379", "redis://host:6379"),
            ("not a url @ all", "not a url @ all"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }

    #[test]
    fn tls_ca_file_needs_rediss_and_a_readable_pem() {
        let err = node_config("redis://127.0.0.1:6379", Some("/nonexistent.pem"))
            .expect_err("plain URL with a CA file");
        assert!(err.to_string().contains("not rediss://"), "{err}");
        let err = node_config("rediss://127.0.0.1:6379", Some("/nonexistent.pem"))
            .expect_err("missing CA file");
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
        let empty = std::env::temp_dir().join(format!("empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "").expect("temp file");
        let path = empty.to_string_lossy().into_owned();
        let err = node_config("rediss://127.0.0.1:6379", Some(&path)).expect_err("empty CA file");
        assert!(err.to_string().contains("no certificate"), "{err}");
        let _ = std::fs::remove_file(&empty);
        assert!(node_config("rediss://127.0.0.1:6379", None).is_ok());
    }

    #[test]
    fn endpoints_named_by_the_sentinels_keep_the_base_settings() {
        let base = node_config("redis://user:pw@10.0.0.1:6379/2", None).expect("url");
        let endpoint = Endpoint::at(&base, "127.0.0.1", 7001);
        assert_eq!(endpoint.addr, "127.0.0.1:7001");
        assert_eq!(endpoint.label, "redis://127.0.0.1:7001");
        assert_eq!(endpoint.config.username.as_deref(), Some("user"));
        assert_eq!(endpoint.config.database, Some(2));
        let parsed = Endpoint::parse("redis://user:pw@127.0.0.1:7002/0", None).expect("url");
        assert_eq!(parsed.addr, "127.0.0.1:7002");
        assert_eq!(parsed.label, "redis://127.0.0.1:7002/0");
    }
}
