//! Waiting on a condition with a deadline.
//!
//! Tests must never sleep a fixed time and hope: they poll a condition at a
//! short interval and fail with a message naming what they waited for when
//! the deadline passes.

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep, Instant};

/// How often conditions are re-checked.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `check` until it yields `Some(value)`, failing after `timeout`.
///
/// Errors from `check` are not fatal (the thing may not be up yet); the last
/// one is reported if the deadline passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err),
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(err) => err.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// Polls `check` until it returns `true`, failing after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for(what, timeout, || {
        let fut = check();
        async move { Ok(fut.await.then_some(())) }
    })
    .await
}

/// A deadline for hand-written polling loops, for checks that need `&mut`
/// access (which a closure given to [`wait_for`] cannot lend to its future):
///
/// ```text
/// let deadline = Deadline::new("bob in `joined`", timeout);
/// while !condition(&mut peer).await? {
///     deadline.tick().await?;
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Deadline {
    what: String,
    timeout: Duration,
    at: Instant,
}

impl Deadline {
    pub fn new(what: &str, timeout: Duration) -> Self {
        Self {
            what: what.to_owned(),
            timeout,
            at: Instant::now() + timeout,
        }
    }

    /// Fails once the deadline has passed, otherwise waits one poll interval.
    pub async fn tick(&self) -> anyhow::Result<()> {
        if Instant::now() >= self.at {
            anyhow::bail!(
                "timed out after {:?} waiting for {}",
                self.timeout,
                self.what
            );
        }
        sleep(POLL_INTERVAL).await;
        Ok(())
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let value = wait_for("third call", Duration::from_secs(5), || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok((n >= 2).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(value, 2);
    }

    #[tokio::test]
    async fn fails_after_the_deadline_with_the_last_error() {
        let err = wait_for::<(), _, _>("never", Duration::from_millis(100), || async {
            Err(anyhow::anyhow!("still broken"))
        })
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("waiting for never"), "{text}");
        assert!(text.contains("still broken"), "{text}");
        assert!(
            wait_until("false", Duration::from_millis(50), || async { false })
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn deadline_ticks_then_expires() {
        let deadline = Deadline::new("nothing", Duration::from_millis(60));
        let mut ticks = 0;
        let err = loop {
            match deadline.tick().await {
                Ok(()) => ticks += 1,
                Err(err) => break err,
            }
        };
        assert!(ticks >= 1);
        assert!(err.to_string().contains("waiting for nothing"));
        assert_eq!(deadline.remaining(), Duration::ZERO);
    }
}
