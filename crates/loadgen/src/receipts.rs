//! Duplicates told apart from deliveries, per connection.
//!
//! The received count is compared with the expected one to find losses, so
//! a message delivered twice would hide a lost one. Every publisher numbers
//! its messages. The cluster keeps one publisher's messages nearly in order
//! (one connection to one gateway, one Redis stream to each subscriber), so
//! a connection remembers, per publisher, the highest number seen and which
//! of the [`WINDOW`] numbers below it arrived: the anti-replay window of
//! IPsec and DTLS.

/// How far behind the highest number a message may arrive and still be
/// told apart. A message older than that is counted as a repeat: it cannot
/// hide a loss that way, only show one.
pub const WINDOW: u64 = 128;

/// What one connection has received in the current phase.
#[derive(Debug, Default)]
pub struct Receipts {
    phase: u64,
    /// Per publisher: the highest number seen, and a bitmap of the numbers
    /// seen at and below it (bit `i` is number `highest - i`).
    publishers: Vec<(u64, u64, u128)>,
}

impl Receipts {
    /// Whether message `seq` of publisher `source`, stamped with `phase`,
    /// arrives here for the first time. A new phase starts afresh.
    pub fn first_time(&mut self, phase: u64, source: u64, seq: u64) -> bool {
        if phase != self.phase {
            self.phase = phase;
            self.publishers.clear();
        }
        // Few publishers (1 to 10 in the benchmark): a scan beats a map.
        let Some((_, highest, seen)) = self
            .publishers
            .iter_mut()
            .find(|(known, _, _)| *known == source)
        else {
            self.publishers.push((source, seq, 1));
            return true;
        };
        if seq > *highest {
            let shift = seq - *highest;
            *seen = if shift >= WINDOW { 0 } else { *seen << shift };
            *seen |= 1;
            *highest = seq;
            return true;
        }
        let behind = *highest - seq;
        if behind >= WINDOW {
            return false;
        }
        let bit = 1u128 << behind;
        let first = *seen & bit == 0;
        *seen |= bit;
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_told_from_new_messages() {
        // (phase, source, seq, first time?)
        let table = [
            (1, 7, 0, true),
            (1, 7, 1, true),
            (1, 7, 1, false), // the same message again
            (1, 7, 0, false), // an older one again
            (1, 8, 0, true),  // another publisher numbers on its own
            (1, 7, 5, true),  // a gap: 2 to 4 may still come
            (1, 7, 3, true),  // late, inside the window
            (1, 7, 3, false),
            (1, 7, 4, true),
            (1, 7, 5, false),
            (1, 7, 5 + WINDOW - 1, true),
            (1, 7, 2, false), // now beyond the window: counted as a repeat
            (1, 7, 6, true),  // still inside the window
            (1, 7, 6, false),
            (1, 7, 1000, true), // a jump past the window forgets the rest
            (1, 7, 999, true),
            (1, 7, 5 + WINDOW - 1, false),
            (1, 8, 1, true),
            (2, 7, 0, true), // a new phase starts afresh
            (2, 7, 0, false),
            (2, 9, u64::MAX, true),
            (2, 9, u64::MAX, false),
            (2, 9, u64::MAX - 1, true),
        ];
        let mut receipts = Receipts::default();
        for (phase, source, seq, first) in table {
            assert_eq!(
                receipts.first_time(phase, source, seq),
                first,
                "phase {phase} source {source} seq {seq}"
            );
        }
    }
}
