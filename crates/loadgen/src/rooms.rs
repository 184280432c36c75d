//! Room membership of the `rooms` scenario: which rooms each client joins,
//! so that every room gets the requested number of members, and how many
//! have joined so far (what a publish to the room is expected to reach).

use std::sync::atomic::AtomicU64;

/// Room membership of the rooms scenario: client `i` joins rooms
/// `(i*K + j) % R` for `j < K`, so every room gets `G` members when the
/// numbers divide.
#[derive(Debug)]
pub(crate) struct Rooms {
    pub count: usize,
    pub per_client: usize,
    /// How many clients have joined each room so far.
    pub members: Vec<AtomicU64>,
}

impl Rooms {
    pub(crate) fn new(clients: usize, per_client: usize, size: usize) -> Self {
        let count = (clients * per_client / size.max(1)).max(1);
        Self {
            count,
            per_client,
            members: (0..count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn of_client(&self, client: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.per_client).map(move |j| (client * self.per_client + j) % self.count)
    }

    pub(crate) fn name(room: usize) -> String {
        format!("r{room}")
    }
}

#[cfg(test)]
mod tests {
    use super::Rooms;

    #[test]
    fn rooms_have_the_requested_size() {
        let rooms = Rooms::new(100, 2, 10);
        assert_eq!(rooms.count, 20);
        let mut sizes = vec![0; rooms.count];
        for client in 0..100 {
            let joined: Vec<usize> = rooms.of_client(client).collect();
            assert_eq!(joined.len(), 2);
            assert_ne!(joined[0], joined[1]);
            for room in joined {
                sizes[room] += 1;
            }
        }
        assert!(sizes.iter().all(|&s| s == 10), "{sizes:?}");
    }
}
