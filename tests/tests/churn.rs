//! Long-polling churn must not grow the gateway's memory (issue 21).
//!
//! Each session joins a room, sends a message and closes at once. On
//! long-polling the join and the close arrive in one request, and the
//! join's handler used to run after the disconnect: socketioxide then put
//! the dead socket in the room for good, about 230 B per session (RSS 17.0
//! → 20.5 → 25.8 MB over rounds of 19 500 sessions). The short version of
//! `make soak`: about a minute of churn, and the memory retained per
//! session between the second and the last round.

use e2e::churn::{self, Churn, MAX_RETAINED_BYTES_PER_SESSION, QUIET_MALLOC};
use e2e::GatewayProcess;

/// Sessions per round (about 10 s each with one Node client process) and
/// rounds: the first is the warm-up, the second the baseline, and the four
/// after it are measured (12 000 sessions).
const SESSIONS: u64 = 3_000;
const ROUNDS: usize = 6;
/// Sessions open at once. At 50 the rounds that retained nothing still
/// moved anonymous RSS by up to 500 KB (the allocator keeps fragments of
/// the round's peak); at 20 by at most about 110 KB, at the same rate.
const CONCURRENCY: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_churn_retains_no_memory_per_session() -> anyhow::Result<()> {
    let gateway = GatewayProcess::start("churn", &QUIET_MALLOC).await?;
    let churn = Churn {
        transports: "polling",
        mode: "close",
        sessions: SESSIONS,
        concurrency: CONCURRENCY,
        others: 0,
    };
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let round = churn::round(&gateway, &churn).await?;
        eprintln!(
            "churn round: {} sessions ({} failed) in {:.1} s, RssAnon {} KB",
            round.sessions,
            round.failed,
            round.seconds,
            round.rss_anon / 1024
        );
        assert_eq!(round.failed, 0, "sessions failed: {round:?}");
        rounds.push(round);
    }
    let retained = churn::retained_per_session(&rounds, 1).expect("rounds after the baseline");
    eprintln!("retained per session after the warm-up: {retained:.1} B");
    assert!(
        retained <= MAX_RETAINED_BYTES_PER_SESSION,
        "the gateway kept {retained:.0} B per session (bound {MAX_RETAINED_BYTES_PER_SESSION} B): {rounds:?}"
    );
    Ok(())
}
