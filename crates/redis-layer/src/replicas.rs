//! Which replicas a subscriber may use, decided from what the sentinels
//! report: pure functions of the master, the listed replicas and the masters
//! seen replaced, so every failover case is a row of a table test.
//!
//! A replica is usable when the sentinels see it up and linked to the
//! current master: a subscriber there hears every PUBLISH made on the master.
//! One still listed as following a former master has not been re-pointed
//! yet; it is about to be (Sentinel then drops its pub/sub clients and it
//! resyncs) or it is cut off, and the sentinels' view of its link lags by up
//! to their INFO period, so its link status alone does not tell.

use fred::types::Value as RedisValue;

/// One entry of `SENTINEL REPLICAS`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    pub host: String,
    pub port: u16,
    pub flags: String,
    pub master_link_status: String,
    /// The master it reports replicating from (`master-host`, `master-port`).
    pub master_host: String,
    pub master_port: String,
}

impl ReplicaInfo {
    /// Up (not subjectively/objectively down, connected to the sentinel) and
    /// with its link to its master up.
    pub fn up_and_linked(&self) -> bool {
        !self
            .flags
            .split(',')
            .any(|flag| matches!(flag, "s_down" | "o_down" | "disconnected"))
            && self.master_link_status == "ok"
    }

    /// `host:port` of the replica.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `host:port` of the master it follows (`:` when not reported).
    pub fn master_addr(&self) -> String {
        format!("{}:{}", self.master_host, self.master_port)
    }
}

/// The replicas of `listed` a subscriber may use while `master` (`host:port`)
/// is the master, as `(host, port)` sorted by address so every gateway sees
/// the same order (the hash selection relies on it).
///
/// Excluded: replicas down or unlinked, the master itself (a promoted
/// replica can still be listed), and replicas following one of
/// `former_masters` other than `master`.
pub fn usable_replicas(
    master: &str,
    listed: &[ReplicaInfo],
    former_masters: &[String],
) -> Vec<(String, u16)> {
    let mut usable: Vec<(String, u16)> = listed
        .iter()
        .filter(|r| r.up_and_linked())
        .filter(|r| r.addr() != master)
        .filter(|r| {
            let follows = r.master_addr();
            follows == master || !former_masters.contains(&follows)
        })
        .map(|r| (r.host.clone(), r.port))
        .collect();
    usable.sort_by_key(|(host, port)| format!("{host}:{port}"));
    usable.dedup();
    usable
}

/// Masters seen replaced, most recent last.
#[derive(Debug, Default, Clone)]
pub struct FormerMasters(Vec<String>);

impl FormerMasters {
    /// Enough for repeated failovers; older masters are replicas again.
    pub const KEPT: usize = 4;

    /// Records that `previous` was replaced by `current`.
    pub fn replaced(&mut self, previous: &str, current: &str) {
        self.0.retain(|addr| addr != previous && addr != current);
        self.0.push(previous.to_owned());
        if self.0.len() > Self::KEPT {
            self.0.remove(0);
        }
    }

    /// The former masters, plus `current` in case the very answer being
    /// judged names a new master.
    pub fn suspects(&self, current: &str) -> Vec<String> {
        let mut suspects = self.0.clone();
        suspects.push(current.to_owned());
        suspects
    }

    /// The recorded masters, oldest first.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// `SENTINEL REPLICAS` is an array of flat `[key, value, ...]` arrays
/// (RESP2) or of maps (RESP3). Entries without a usable address are skipped.
pub fn parse_replicas(reply: RedisValue) -> Vec<ReplicaInfo> {
    let RedisValue::Array(entries) = reply else {
        return Vec::new();
    };
    entries.into_iter().filter_map(parse_replica).collect()
}

fn parse_replica(entry: RedisValue) -> Option<ReplicaInfo> {
    let pairs: Vec<(String, String)> = match entry {
        RedisValue::Array(flat) => flat
            .chunks_exact(2)
            .filter_map(|kv| Some((kv[0].as_string()?, kv[1].as_string()?)))
            .collect(),
        RedisValue::Map(map) => map
            .inner()
            .into_iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_string()?)))
            .collect(),
        _ => return None,
    };
    let mut info = ReplicaInfo::default();
    let mut port = None;
    for (key, value) in pairs {
        match key.as_str() {
            "ip" => info.host = value,
            "port" => port = value.parse::<u16>().ok(),
            "flags" => info.flags = value,
            "master-link-status" => info.master_link_status = value,
            "master-host" => info.master_host = value,
            "master-port" => info.master_port = value,
            _ => {}
        }
    }
    info.port = port?;
    (!info.host.is_empty()).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(pairs: &[(&str, &str)]) -> RedisValue {
        RedisValue::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [RedisValue::from(*k), RedisValue::from(*v)])
                .collect(),
        )
    }

    #[test]
    fn parses_replicas_and_skips_entries_without_an_address() {
        let reply = RedisValue::Array(vec![
            flat(&[
                ("name", "127.0.0.1:7001"),
                ("ip", "127.0.0.1"),
                ("port", "7001"),
                ("flags", "slave"),
                ("master-link-status", "ok"),
                ("master-host", "127.0.0.1"),
                ("master-port", "7000"),
            ]),
            flat(&[
                ("ip", "127.0.0.1"),
                ("port", "7002"),
                ("flags", "s_down,slave,disconnected"),
                ("master-link-status", "err"),
            ]),
            flat(&[("ip", "127.0.0.1"), ("port", "not a port")]),
            flat(&[("port", "7004")]),
            RedisValue::from("garbage"),
        ]);
        let replicas = parse_replicas(reply);
        assert_eq!(replicas.len(), 2);
        assert_eq!(replicas[0].port, 7001);
        assert_eq!(replicas[0].master_addr(), "127.0.0.1:7000");
        assert!(replicas[0].up_and_linked());
        assert!(!replicas[1].up_and_linked());
        assert!(parse_replicas(RedisValue::Null).is_empty());
    }

    /// `host:port` shorthand: replica `port` following master `follows`.
    fn replica(port: u16, flags: &str, link: &str, follows: u16) -> ReplicaInfo {
        ReplicaInfo {
            host: "h".to_owned(),
            port,
            flags: flags.to_owned(),
            master_link_status: link.to_owned(),
            master_host: "h".to_owned(),
            master_port: follows.to_string(),
        }
    }

    /// (case, master, listed replicas, former masters, usable replicas)
    type Case = (&'static str, u16, Vec<ReplicaInfo>, Vec<u16>, Vec<u16>);

    #[test]
    fn usable_replicas_across_failover_cases() {
        let ok = "slave";
        let cases: Vec<Case> =
            vec![
            (
                "steady state: both replicas linked, sorted by address",
                1,
                vec![replica(3, ok, "ok", 1), replica(2, ok, "ok", 1)],
                vec![],
                vec![2, 3],
            ),
            (
                "a replica killed: flagged down by the sentinels",
                1,
                vec![
                    replica(2, "s_down,slave,disconnected", "err", 1),
                    replica(3, ok, "ok", 1),
                ],
                vec![],
                vec![3],
            ),
            (
                "a replica restarted and resyncing: link not up yet",
                1,
                vec![replica(2, ok, "err", 1), replica(3, ok, "ok", 1)],
                vec![],
                vec![3],
            ),
            (
                "just after a failover: 2 promoted, still listed; 3 still follows the old master",
                2,
                vec![replica(2, ok, "ok", 1), replica(3, ok, "ok", 1)],
                vec![1],
                vec![],
            ),
            (
                "after the failover: 3 re-pointed to the new master",
                2,
                vec![replica(3, ok, "ok", 2), replica(1, "s_down,slave", "err", 2)],
                vec![1],
                vec![3],
            ),
            (
                "the old master back as a replica of the new one",
                2,
                vec![replica(3, ok, "ok", 2), replica(1, ok, "ok", 2)],
                vec![1],
                vec![1, 3],
            ),
            (
                "failed back: the first master is master again, 2 follows it",
                1,
                vec![replica(2, ok, "ok", 1), replica(3, ok, "ok", 2)],
                vec![2],
                vec![2],
            ),
            (
                "a replica following an unknown server is not judged stale",
                1,
                vec![replica(2, ok, "ok", 9)],
                vec![],
                vec![2],
            ),
            (
                "listed twice (two sentinels' views merged)",
                1,
                vec![replica(2, ok, "ok", 1), replica(2, ok, "ok", 1)],
                vec![],
                vec![2],
            ),
        ];
        for (case, master, listed, former, want) in cases {
            let former: Vec<String> = former.iter().map(|p| format!("h:{p}")).collect();
            let got: Vec<u16> = usable_replicas(&format!("h:{master}"), &listed, &former)
                .into_iter()
                .map(|(_, port)| port)
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn former_masters_keep_the_latest_few_and_never_the_current_one() {
        let mut former = FormerMasters::default();
        former.replaced("a:1", "b:1");
        former.replaced("b:1", "a:1");
        assert_eq!(former.as_slice(), ["b:1"], "a:1 is the master again");
        for n in 2..10 {
            former.replaced(&format!("x:{n}"), "a:1");
        }
        assert_eq!(former.as_slice().len(), FormerMasters::KEPT);
        assert_eq!(former.as_slice().last().map(String::as_str), Some("x:9"));
        assert_eq!(
            former.suspects("a:1").last().map(String::as_str),
            Some("a:1")
        );
    }
}
