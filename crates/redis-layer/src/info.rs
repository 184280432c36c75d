//! Reading `INFO replication`: its fields, and whether a server can take
//! over a subscriber's stream (pure, so the cases are unit-tested).

/// The value of `field` in an `INFO` reply (`field:value` lines).
pub fn info_value<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(':')?;
        (key == field).then_some(value.trim())
    })
}

/// The integer value of `field` in an `INFO` reply.
pub fn info_int(info: &str, field: &str) -> Option<i64> {
    info_value(info, field)?.parse().ok()
}

/// Why a server cannot take over a subscriber's stream yet, from its
/// `INFO replication`: a replica must be linked to its master with no sync
/// running, or the stream it delivers would be late or incomplete.
pub fn not_in_sync(info: &str) -> Option<String> {
    match info_value(info, "role") {
        Some("master") => None,
        Some("slave") => {
            let link = info_value(info, "master_link_status").unwrap_or("unknown");
            let syncing = info_value(info, "master_sync_in_progress").unwrap_or("0");
            (link != "up" || syncing != "0")
                .then(|| format!("replica link {link}, sync in progress {syncing}"))
        }
        other => Some(format!("unexpected role {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields() {
        let info =
            "# Replication\r\nrole:slave\r\nslave_repl_offset:1234\r\nmaster_repl_offset:1300\r\n";
        assert_eq!(info_value(info, "role"), Some("slave"));
        assert_eq!(info_int(info, "slave_repl_offset"), Some(1234));
        assert_eq!(info_int(info, "master_repl_offset"), Some(1300));
        assert_eq!(info_int(info, "missing"), None);
        assert_eq!(
            info_int("master_repl_offset:x\r\n", "master_repl_offset"),
            None
        );
    }

    #[test]
    fn a_replica_takes_over_only_when_linked_and_not_syncing() {
        let cases = [
            ("role:master\r\n", true),
            (
                "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n",
                true,
            ),
            (
                "role:slave\r\nmaster_link_status:down\r\nmaster_sync_in_progress:0\r\n",
                false,
            ),
            (
                "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:1\r\n",
                false,
            ),
            ("role:slave\r\n", false),
            ("role:sentinel\r\n", false),
            ("", false),
        ];
        for (info, ready) in cases {
            assert_eq!(not_in_sync(info).is_none(), ready, "{info:?}");
        }
    }
}
