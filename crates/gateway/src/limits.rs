//! Abuse limits: the `[limits]` section, and the per-socket event rate
//! limit as a token bucket whose decisions are a pure function of the time
//! given to it (so the table tests need no clock).
//!
//! A socket over its rate has its events dropped (counted); one that stays
//! over it for the grace period is disconnected, so a flooding client costs
//! the gateway the parsing of its packets and nothing more.

use std::time::{Duration, Instant};

use serde::Deserialize;

/// The `[limits]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest packet accepted from a client, in bytes.
    pub max_payload_bytes: u64,
    /// Rooms a socket may be in, its id room and user room aside.
    pub max_rooms_per_socket: usize,
    /// Sustained events per second per socket.
    pub events_per_second: f64,
    /// Events a socket may send at once above the sustained rate.
    pub events_burst: f64,
    /// Seconds a socket may stay over its rate before it is disconnected.
    pub events_grace_s: f64,
    /// Connections beyond which new handshakes are refused; `None`: the
    /// open-files limit minus a reserve.
    pub max_connections: Option<usize>,
    /// New sessions per client address and second; `None`: unlimited.
    pub connects_per_ip_per_second: Option<u32>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_payload_bytes: 1_000_000,
            max_rooms_per_socket: 100,
            events_per_second: 50.0,
            events_burst: 100.0,
            events_grace_s: 5.0,
            max_connections: None,
            connects_per_ip_per_second: None,
        }
    }
}

impl LimitsConfig {
    /// Why a value cannot be used: `(key, reason)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_payload_bytes < 1024 {
            return Err(("limits.max_payload_bytes", "must be at least 1024".into()));
        }
        for (key, value) in [
            ("limits.events_per_second", self.events_per_second),
            ("limits.events_burst", self.events_burst),
        ] {
            if !(value.is_finite() && value >= 1.0) {
                return Err((key, format!("{value} must be a number of at least 1")));
            }
        }
        if self.max_connections == Some(0) {
            return Err(("limits.max_connections", "must be at least 1".into()));
        }
        if self.connects_per_ip_per_second == Some(0) {
            return Err((
                "limits.connects_per_ip_per_second",
                "must be at least 1 (leave it unset for no limit)".into(),
            ));
        }
        if !(self.events_grace_s.is_finite() && self.events_grace_s >= 0.0) {
            return Err((
                "limits.events_grace_s",
                "must be a number of seconds, 0 or more".into(),
            ));
        }
        Ok(())
    }
}

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: handle it.
    Allow,
    /// Over the rate: drop it.
    Drop,
    /// Over the rate for longer than the grace: drop it and disconnect.
    Disconnect,
}

/// A token bucket of `burst` tokens refilled at `rate` per second, and the
/// current flood: drops with less than [`FLOOD_GAP`] between them.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    last_drop: Option<Instant>,
    flood_since: Instant,
}

/// A drop-free gap this long ends a flood.
pub const FLOOD_GAP: Duration = Duration::from_secs(1);

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limits: &LimitsConfig, now: Instant) -> Self {
        Self {
            tokens: limits.events_burst,
            last: now,
            last_drop: None,
            flood_since: now,
        }
    }

    /// The verdict on an event arriving at `now`.
    pub fn take(&mut self, limits: &LimitsConfig, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * limits.events_per_second).min(limits.events_burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        let new_flood = self
            .last_drop
            .is_none_or(|last| now.saturating_duration_since(last) > FLOOD_GAP);
        if new_flood {
            self.flood_since = now;
        }
        self.last_drop = Some(now);
        let flooding = now.saturating_duration_since(self.flood_since);
        // A grace too long for a Duration never ends.
        let grace = Duration::try_from_secs_f64(limits.events_grace_s).unwrap_or(Duration::MAX);
        if flooding >= grace {
            Verdict::Disconnect
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: f64, burst: f64, grace: f64) -> LimitsConfig {
        LimitsConfig {
            events_per_second: rate,
            events_burst: burst,
            events_grace_s: grace,
            ..LimitsConfig::default()
        }
    }

    /// Feeds events at the given times (ms after start) and returns the
    /// verdicts.
    fn verdicts(l: &LimitsConfig, times_ms: &[u64]) -> Vec<Verdict> {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(l, t0);
        times_ms
            .iter()
            .map(|ms| bucket.take(l, t0 + Duration::from_millis(*ms)))
            .collect()
    }

    #[test]
    fn burst_then_the_rate() {
        use Verdict::{Allow, Drop};
        let l = limits(10.0, 3.0, 1.0);
        // Three at once (the burst), a fourth dropped, half a token at
        // 50 ms, a whole one at 100 ms, then 9.99 refilled by 1099 ms.
        let got = verdicts(&l, &[0, 0, 0, 0, 50, 100, 100, 1099]);
        assert_eq!(got, [Allow, Allow, Allow, Drop, Drop, Allow, Drop, Allow]);
    }

    #[test]
    fn a_steady_flood_is_disconnected_after_the_grace() {
        // Ten events a second against a rate of one: about one a second
        // passes, the rest are dropped, and the flood never pauses.
        let l = limits(1.0, 1.0, 2.0);
        let times: Vec<u64> = (0..=25).map(|i| i * 100).collect();
        let got = verdicts(&l, &times);
        assert_eq!(
            got.iter().filter(|v| **v == Verdict::Allow).count(),
            3,
            "{got:?}"
        );
        let first_disconnect = got.iter().position(|v| *v == Verdict::Disconnect);
        // Dropping since 100 ms: disconnected at the first drop from 2100 ms.
        assert!(matches!(first_disconnect, Some(21 | 22)), "{got:?}");
    }

    #[test]
    fn a_drop_free_second_ends_the_flood() {
        use Verdict::{Allow, Drop};
        let l = limits(1.0, 1.0, 2.0);
        // Dropped at 100 ms, then nothing until 2500 ms: a new flood, which
        // has its own grace.
        let got = verdicts(&l, &[0, 100, 2500, 2500, 2600]);
        assert_eq!(got, [Allow, Drop, Allow, Drop, Drop]);
    }

    #[test]
    fn a_grace_beyond_any_duration_never_ends() {
        let l = limits(1.0, 1.0, 1e300);
        let times: Vec<u64> = (0..30).map(|i| i * 100).collect();
        assert!(!verdicts(&l, &times).contains(&Verdict::Disconnect));
    }

    #[test]
    fn checks_refuse_unusable_values() {
        assert!(LimitsConfig::default().check().is_ok());
        let bad = [
            LimitsConfig {
                max_payload_bytes: 10,
                ..LimitsConfig::default()
            },
            LimitsConfig {
                events_per_second: 0.0,
                ..LimitsConfig::default()
            },
            LimitsConfig {
                events_burst: f64::NAN,
                ..LimitsConfig::default()
            },
            LimitsConfig {
                events_grace_s: -1.0,
                ..LimitsConfig::default()
            },
        ];
        for limits in bad {
            assert!(limits.check().is_err(), "{limits:?}");
        }
    }
}
