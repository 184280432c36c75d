//! A Redis that requires authentication, as production ones do: a password
//! on the default user (`requirepass`) and an ACL user (`ACL SETUSER`) on the
//! master and its replicas (which authenticate to the master with
//! `masteruser`/`masterauth`), and a database other than 0. Gateways and the
//! emitter CLI given `redis://user:pass@host:port/2` URLs must relay as
//! usual; a wrong password must stop them at start with an error naming the
//! problem rather than leave a process running that relays nothing. The
//! same for TLS (`rediss://`): a server certificate from a private CA is
//! trusted through the CA-file option, and refused without it.

use std::time::Duration;

use e2e::bins::{gateway_exit, run_emitter};
use e2e::{free_port, GatewayProcess, NodePeer, PrivateCa, RedisConn, RedisServer};
use serde_json::json;

const USER: &str = "app";
const USER_PASSWORD: &str = "app-secret";
/// The default user's password (`requirepass`).
const DEFAULT_PASSWORD: &str = "default-secret";
const EVENT: Duration = Duration::from_secs(10);

/// A connection to `server` logged in as the ACL user.
async fn login(server: &RedisServer) -> anyhow::Result<RedisConn> {
    let mut conn = server.conn().await?;
    conn.command(&["AUTH", USER, USER_PASSWORD]).await?;
    Ok(conn)
}

/// Creates the ACL user, then protects the default user with a password.
/// The harness checks readiness without credentials, so protection comes
/// after start.
async fn protect(server: &RedisServer) -> anyhow::Result<()> {
    let mut conn = server.conn().await?;
    let password = format!(">{USER_PASSWORD}");
    conn.command(&["ACL", "SETUSER", USER, "on", &password, "~*", "&*", "+@all"])
        .await?;
    conn.command(&["CONFIG", "SET", "requirepass", DEFAULT_PASSWORD])
        .await?;
    // Without credentials, the server now refuses commands.
    let mut anonymous = server.conn().await?;
    let refused = anonymous.command(&["PING"]).await;
    anyhow::ensure!(
        refused.is_err(),
        "port {} still answers without AUTH",
        server.port()
    );
    Ok(())
}

/// A master and two replicas that all require AUTH, the replicas
/// authenticating to the master as the ACL user.
async fn protected_servers() -> anyhow::Result<(RedisServer, RedisServer, RedisServer)> {
    let master = RedisServer::master().await?;
    let mut conn = master.conn().await?;
    let password = format!(">{USER_PASSWORD}");
    conn.command(&["ACL", "SETUSER", USER, "on", &password, "~*", "&*", "+@all"])
        .await?;
    let replica_args = ["--masteruser", USER, "--masterauth", USER_PASSWORD];
    let replica_a = RedisServer::start(Some(master.port()), &replica_args).await?;
    let replica_b = RedisServer::start(Some(master.port()), &replica_args).await?;
    for server in [&master, &replica_a, &replica_b] {
        protect(server).await?;
    }
    Ok((master, replica_a, replica_b))
}

/// `redis://app:app-secret@127.0.0.1:<port>/2`
fn user_url(server: &RedisServer) -> String {
    format!(
        "redis://{USER}:{USER_PASSWORD}@127.0.0.1:{}/2",
        server.port()
    )
}

/// How many client connections of the ACL user each database has, from
/// `CLIENT LIST` (`... db=2 ... user=app ...`).
async fn user_connections_by_db(server: &RedisServer) -> anyhow::Result<Vec<(String, usize)>> {
    let reply = login(server).await?.command(&["CLIENT", "LIST"]).await?;
    let text = reply.as_str().unwrap_or_default().to_owned();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name))
                .map(str::to_owned)
        };
        // Skip the test's own connection (running CLIENT LIST) and the
        // replicas' replication links (flag S), which use no database.
        if field("user=").as_deref() != Some(USER)
            || field("cmd=").as_deref() == Some("client|list")
            || field("flags=").is_some_and(|flags| flags.contains('S'))
        {
            continue;
        }
        let db = field("db=").unwrap_or_default();
        match counts.iter_mut().find(|(d, _)| *d == db) {
            Some((_, n)) => *n += 1,
            None => counts.push((db, 1)),
        }
    }
    Ok(counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_password_and_database_2_relay() -> anyhow::Result<()> {
    let (master, replica_a, replica_b) = protected_servers().await?;
    assert!(
        login(&replica_a)
            .await?
            .command(&["INFO", "replication"])
            .await?
            .as_str()
            .unwrap_or_default()
            .contains("master_link_status:up"),
        "replica A not linked to the protected master"
    );
    let master_url = user_url(&master);
    let replicas = format!("{},{}", user_url(&replica_a), user_url(&replica_b));
    let gw_a = GatewayProcess::start(
        "gw-a",
        &[
            ("GATEWAY_REDIS__URL", master_url.as_str()),
            ("GATEWAY_REDIS__REPLICA_URLS", replicas.as_str()),
            ("GATEWAY_REDIS__SUBSCRIBER_SELECTION", "first"),
        ],
    )
    .await?;
    // gw-b uses the default user's password (`:password@`) on the master and
    // subscribes on replica B.
    let default_url = format!("redis://:{DEFAULT_PASSWORD}@127.0.0.1:{}/2", master.port());
    let replica_b_default = format!(
        "redis://:{DEFAULT_PASSWORD}@127.0.0.1:{}/2",
        replica_b.port()
    );
    let gw_b = GatewayProcess::start(
        "gw-b",
        &[
            ("GATEWAY_REDIS__URL", default_url.as_str()),
            ("GATEWAY_REDIS__REPLICA_URLS", replica_b_default.as_str()),
        ],
    )
    .await?;
    let mut alice = NodePeer::client("alice", &gw_a.url(), &[]).await?;
    let mut bob = NodePeer::client("bob", &gw_b.url(), &[]).await?;

    alice.emit("message", json!(["from alice"])).await?;
    let event = bob.expect_event("message", EVENT).await?;
    assert_eq!(event["args"], json!(["from alice"]));
    bob.emit("message", json!(["from bob"])).await?;
    let event = alice.expect_event("message", EVENT).await?;
    assert_eq!(event["args"], json!(["from bob"]));

    // The emitter CLI, through the ACL user and through `requirepass`.
    for url in [&master_url, &default_url] {
        let (code, stdout, stderr) = run_emitter(
            &["emit", "--redis", url, "message", "from the cli"],
            &[],
            EVENT,
        )
        .await?;
        assert_eq!(code, Some(0), "emitter failed: {stdout}\n{stderr}");
        for peer in [&mut alice, &mut bob] {
            let event = peer.expect_event("message", EVENT).await?;
            assert_eq!(event["args"], json!(["from the cli"]), "{}", peer.name());
        }
    }

    // The replication lag is sampled through the same credentials (gw-a is
    // on replica A, gw-b on replica B).
    for gateway in [&gw_a, &gw_b] {
        gateway
            .wait_metric("adapter_replication_lag_bytes", |v| v >= 0.0, EVENT)
            .await?;
    }

    // Every connection of the ACL user selected database 2 (gw-a's publisher
    // on the master; its subscriber and counters on the replicas).
    for (name, server) in [("master", &master), ("replica A", &replica_a)] {
        let by_db = user_connections_by_db(server).await?;
        eprintln!("[redis auth] {name}: connections of user {USER} by database: {by_db:?}");
        assert!(
            !by_db.is_empty() && by_db.iter().all(|(db, _)| db == "2"),
            "{name}: {by_db:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_fails_at_start() -> anyhow::Result<()> {
    let (master, _replica_a, _replica_b) = protected_servers().await?;
    let wrong = format!(
        "redis://{USER}:not-the-password@127.0.0.1:{}/2",
        master.port()
    );

    // The gateway exits non-zero, saying why.
    let (code, logs) = gateway_exit(
        &[("GATEWAY_REDIS__URL", wrong.as_str())],
        Duration::from_secs(30),
    )
    .await?;
    eprintln!("[redis auth] gateway with a wrong password: {code:?}\n{logs}");
    assert_eq!(code, Some(1), "{logs}");
    assert!(
        logs.contains("WRONGPASS") || logs.contains("invalid username-password"),
        "the gateway's error does not name the authentication problem:\n{logs}"
    );
    assert!(
        !logs.contains("not-the-password"),
        "the password leaked:\n{logs}"
    );

    // The emitter CLI exits 1.
    let (code, stdout, stderr) =
        run_emitter(&["emit", "--redis", &wrong, "message", "x"], &[], EVENT).await?;
    eprintln!("[redis auth] emitter with a wrong password: {code:?}\n{stderr}");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("WRONGPASS") || stderr.contains("invalid username-password"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() -> anyhow::Result<()> {
    let private_ca = PrivateCa::new("redis").await?;
    let (ca, cert, key) = (
        private_ca.ca_cert(),
        private_ca.server_cert(),
        private_ca.server_key(),
    );
    let tls_port = free_port()?.to_string();
    // The plain port stays for the harness' readiness check; the cluster
    // only uses the TLS one.
    let master = RedisServer::start(
        None,
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    )
    .await?;
    let url = format!("rediss://127.0.0.1:{tls_port}/2");
    let tls_env = [
        ("GATEWAY_REDIS__URL", url.as_str()),
        ("GATEWAY_REDIS__TLS_CA_FILE", ca.as_str()),
    ];
    let gw_a = GatewayProcess::start("tls-a", &tls_env).await?;
    let gw_b = GatewayProcess::start("tls-b", &tls_env).await?;
    let mut alice = NodePeer::client("alice", &gw_a.url(), &[]).await?;
    let mut bob = NodePeer::client("bob", &gw_b.url(), &[]).await?;
    alice.emit("message", json!(["over tls"])).await?;
    let event = bob.expect_event("message", EVENT).await?;
    assert_eq!(event["args"], json!(["over tls"]));

    let (code, stdout, stderr) = run_emitter(
        &["emit", "--redis", &url, "message", "cli over tls"],
        &[("EMITTER_REDIS__TLS_CA_FILE", ca.as_str())],
        EVENT,
    )
    .await?;
    assert_eq!(code, Some(0), "emitter failed: {stdout}\n{stderr}");
    for peer in [&mut alice, &mut bob] {
        let event = peer.expect_event("message", EVENT).await?;
        assert_eq!(event["args"], json!(["cli over tls"]), "{}", peer.name());
    }

    // Every gateway connection came in on the TLS port.
    let clients = master.command(&["CLIENT", "LIST"]).await?;
    let clients = clients.as_str().unwrap_or_default().to_owned();
    let on_tls = clients
        .lines()
        .filter(|line| line.contains(&format!("laddr=127.0.0.1:{tls_port} ")))
        .count();
    let plain = clients
        .lines()
        .filter(|line| line.contains(&format!("laddr=127.0.0.1:{} ", master.port())))
        .filter(|line| !line.contains("cmd=client|list"))
        .count();
    eprintln!("[redis tls] connections on the TLS port: {on_tls}, on the plain port: {plain}");
    assert!(on_tls >= 4, "{clients}");
    assert_eq!(plain, 0, "{clients}");

    // Without the CA file the server certificate is refused, at start.
    let (code, logs) = gateway_exit(
        &[("GATEWAY_REDIS__URL", url.as_str())],
        Duration::from_secs(30),
    )
    .await?;
    eprintln!("[redis tls] gateway without the CA file: {code:?}\n{logs}");
    assert_eq!(code, Some(1), "{logs}");
    assert!(
        logs.contains("UnknownIssuer") || logs.to_lowercase().contains("certificate"),
        "{logs}"
    );
    let (code, _, stderr) =
        run_emitter(&["emit", "--redis", &url, "message", "x"], &[], EVENT).await?;
    eprintln!("[redis tls] emitter without the CA file: {code:?}\n{stderr}");
    assert_eq!(code, Some(1), "{stderr}");
    Ok(())
}
