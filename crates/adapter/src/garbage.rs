//! Counting and rate-limited logging of malformed messages.
//!
//! Anyone who can PUBLISH on the Redis can send anything on our channels; a
//! flood of garbage must neither panic nor drown the logs. Every bad message
//! is counted; each kind is logged at most once per interval, with the number
//! of messages suppressed since the last line.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::metrics::{AdapterMetrics, GarbageKind};

const LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct KindState {
    last_logged: Option<Instant>,
    suppressed: u64,
}

/// Per-kind rate limiter for garbage warnings.
#[derive(Debug)]
pub(crate) struct GarbageLog {
    kinds: Mutex<Vec<KindState>>,
    interval: Duration,
}

impl Default for GarbageLog {
    fn default() -> Self {
        Self::with_interval(LOG_INTERVAL)
    }
}

impl GarbageLog {
    pub(crate) fn with_interval(interval: Duration) -> Self {
        Self {
            kinds: Mutex::new(
                GarbageKind::ALL
                    .iter()
                    .map(|_| KindState::default())
                    .collect(),
            ),
            interval,
        }
    }

    /// Count one malformed message and log it unless this kind was logged
    /// recently. Returns whether a line was logged.
    pub(crate) fn report(
        &self,
        metrics: &AdapterMetrics,
        kind: GarbageKind,
        channel: &str,
        error: &dyn std::fmt::Display,
    ) -> bool {
        metrics.garbage(kind);
        let Ok(mut kinds) = self.kinds.lock() else {
            return false;
        };
        let Some(state) = kinds.get_mut(kind.index()) else {
            return false;
        };
        let now = Instant::now();
        let due = state
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if !due {
            state.suppressed += 1;
            return false;
        }
        let suppressed = std::mem::take(&mut state.suppressed);
        state.last_logged = Some(now);
        drop(kinds);
        tracing::warn!(
            kind = kind.as_str(),
            channel,
            suppressed,
            "ignoring malformed message: {error}"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_once_per_interval_but_counts_all() {
        let metrics = AdapterMetrics::default();
        let log = GarbageLog::with_interval(Duration::from_secs(3600));
        assert!(log.report(&metrics, GarbageKind::Broadcast, "c", &"bad"));
        assert!(!log.report(&metrics, GarbageKind::Broadcast, "c", &"bad"));
        assert!(!log.report(&metrics, GarbageKind::Broadcast, "c", &"bad"));
        // Another kind has its own budget.
        assert!(log.report(&metrics, GarbageKind::Request, "c", &"bad"));
        assert_eq!(metrics.garbage_count(GarbageKind::Broadcast), 3);
        assert_eq!(metrics.garbage_count(GarbageKind::Request), 1);
    }

    #[test]
    fn logs_again_after_interval() {
        let metrics = AdapterMetrics::default();
        let log = GarbageLog::with_interval(Duration::ZERO);
        assert!(log.report(&metrics, GarbageKind::Response, "c", &"bad"));
        assert!(log.report(&metrics, GarbageKind::Response, "c", &"bad"));
    }
}
