//! Client tokens minted by Node's `jsonwebtoken` (`tests/node/jwt.js`), so
//! the gateway's verification is checked against another implementation.
//! [`TokenKit`] holds a fresh RSA, EC (P-256) and Ed25519 key pair in a
//! directory removed on drop.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::process::Command;

use crate::node::ensure_node_modules;

/// Key pairs on disk, and a way to sign with them.
#[derive(Debug)]
pub struct TokenKit {
    dir: PathBuf,
}

impl Drop for TokenKit {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl TokenKit {
    /// Generates the key pairs.
    pub async fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "e2e-jwt-{}-{}",
            std::process::id(),
            crate::free_port()?
        ));
        let kit = Self { dir };
        let dir = kit.dir.to_string_lossy().into_owned();
        run_jwt_js(&["keys", &dir]).await?;
        Ok(kit)
    }

    /// `rsa`, `ec` or `ed`: the private key file.
    pub fn private_key(&self, family: &str) -> PathBuf {
        self.dir.join(format!("{family}.pem"))
    }

    /// `rsa`, `ec` or `ed`: the public key file.
    pub fn public_key(&self, family: &str) -> PathBuf {
        self.dir.join(format!("{family}.pub.pem"))
    }

    /// One token per spec (see `tests/node/jwt.js`).
    pub async fn sign(&self, specs: &Value) -> anyhow::Result<Vec<String>> {
        let out = run_jwt_js(&["sign", &specs.to_string()]).await?;
        let tokens: Vec<String> =
            serde_json::from_str(out.trim()).with_context(|| format!("jwt.js printed {out:?}"))?;
        anyhow::ensure!(tokens.len() == specs.as_array().map_or(0, Vec::len));
        Ok(tokens)
    }

    /// The directory of the keys.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

async fn run_jwt_js(args: &[&str]) -> anyhow::Result<String> {
    ensure_node_modules()?;
    let output = Command::new("node")
        .arg(crate::node_dir().join("jwt.js"))
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .context("running node jwt.js")?;
    if !output.status.success() {
        bail!(
            "node jwt.js {:?} failed: {}",
            args.first(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
