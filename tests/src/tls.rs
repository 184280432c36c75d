//! Certificates for the TLS tests: a private CA and a server certificate
//! for 127.0.0.1 it signed, made by the `openssl` command in a temporary
//! folder that is removed on drop. Redis over TLS and https hooks both
//! trust the CA through a `*_TLS_CA_FILE` key, as a deployment with its own
//! CA would.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// The files of a private CA and of one server certificate it signed.
#[derive(Debug)]
pub struct PrivateCa {
    dir: PathBuf,
}

impl PrivateCa {
    /// Makes a CA and a certificate for `IP:127.0.0.1`, both P-256 and
    /// valid for two days, in a new folder named after `name`.
    pub async fn new(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "e2e-tls-{name}-{}-{}",
            std::process::id(),
            crate::free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        let ca = Self { dir };
        ca.make().await?;
        Ok(ca)
    }

    /// The CA's certificate (PEM): what a client trusts.
    pub fn ca_cert(&self) -> String {
        self.file("ca.crt")
    }

    /// The server's certificate (PEM).
    pub fn server_cert(&self) -> String {
        self.file("server.crt")
    }

    /// The server's private key (PEM).
    pub fn server_key(&self) -> String {
        self.file("server.key")
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    async fn make(&self) -> anyhow::Result<()> {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend_from_slice(&ec);
        ca.extend_from_slice(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=e2e test CA",
        ]);
        openssl(&self.dir, &ca).await?;
        let mut request = vec!["req"];
        request.extend_from_slice(&ec);
        request.extend_from_slice(&[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&self.dir, &request).await?;
        std::fs::write(self.dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n")?;
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        )
        .await
    }
}

impl Drop for PrivateCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl` with `args` in `dir`.
async fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .await
        .map_err(|err| anyhow::anyhow!("running openssl (is it installed?): {err}"))?;
    anyhow::ensure!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
