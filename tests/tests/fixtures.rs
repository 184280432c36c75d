//! The checked-in vectors are what the installed npm packages write today.
//!
//! `crates/wire` and `crates/protocol` test their codecs against vectors
//! that real Node packages wrote (`crates/wire/tests/node/golden.json`,
//! `crates/protocol/tests/fixtures/*.json`), so that those crates' tests
//! need no Node. This test reruns the two generators with the packages
//! `tests/node` installs (notepack.io 3.0.1 and 2.x, msgpack-js 0.3.0,
//! socket.io-parser 4.2.4 and 3.4.3, engine.io-parser 5.2.3 and 2.2.1) and
//! requires the same bytes: a package that changed what it writes, or a
//! fixture edited by hand, fails here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use e2e::{node::ensure_node_modules, node_dir, workspace_root};
use tokio::process::Command;

const GENERATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `node <script> <args>` with `tests/node`'s packages; its stdout.
async fn generate(script: &Path, args: &[&Path]) -> anyhow::Result<Vec<u8>> {
    ensure_node_modules()?;
    let output = tokio::time::timeout(
        GENERATE_TIMEOUT,
        Command::new("node")
            .arg(script)
            .args(args)
            .env("NODE_PATH", node_dir().join("node_modules"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("{} did not finish", script.display()))?
    .with_context(|| format!("running node {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "node {} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[tokio::test]
async fn wire_golden_vectors_are_what_the_installed_packages_write() -> anyhow::Result<()> {
    let dir = workspace_root().join("crates/wire/tests/node");
    let written = generate(&dir.join("golden.js"), &[]).await?;
    let checked_in = read(&dir.join("golden.json"))?;
    assert!(
        written == checked_in,
        "crates/wire/tests/node/golden.json differs from what golden.js writes with tests/node's \
         packages; regenerate it: NODE_PATH=tests/node/node_modules node \
         crates/wire/tests/node/golden.js > crates/wire/tests/node/golden.json"
    );
    Ok(())
}

#[tokio::test]
async fn protocol_fixtures_are_what_the_installed_packages_write() -> anyhow::Result<()> {
    let crate_dir = workspace_root().join("crates/protocol/tests");
    let out: PathBuf = std::env::temp_dir().join(format!("e2e-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&out)?;
    generate(&crate_dir.join("node/gen_fixtures.js"), &[&out]).await?;
    let mut compared = 0;
    for entry in std::fs::read_dir(crate_dir.join("fixtures"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let name = path.file_name().context("a fixture without a name")?;
        let written = read(&out.join(name))?;
        assert!(
            written == read(&path)?,
            "{} differs from what gen_fixtures.js writes with tests/node's packages; regenerate: \
             NODE_PATH=tests/node/node_modules node crates/protocol/tests/node/gen_fixtures.js \
             crates/protocol/tests/fixtures",
            path.display()
        );
        compared += 1;
    }
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(compared, 5, "the five fixture files");
    Ok(())
}
