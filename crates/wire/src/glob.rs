//! Which channels a `PSUBSCRIBE` pattern matches, as Redis decides it
//! (`stringmatchlen` in its `util.c`, case-sensitive): `*`, `?`, `[set]`
//! with `^` and ranges, and `\` escapes, on bytes.
//!
//! The adapter's in-memory bus routes by it, so a test without Redis
//! delivers exactly what Redis would, escaped namespaces included (see
//! [`crate::Channels::broadcast_pattern`]).

/// Whether `channel` matches the Redis glob `pattern`.
pub fn pattern_matches(pattern: &str, channel: &str) -> bool {
    matches_bytes(pattern.as_bytes(), channel.as_bytes())
}

fn matches_bytes(mut pattern: &[u8], mut text: &[u8]) -> bool {
    while let Some((&p, rest)) = pattern.split_first() {
        match p {
            b'*' => {
                let rest = trim_stars(rest);
                if rest.is_empty() {
                    return true;
                }
                return (0..=text.len()).any(|skip| matches_bytes(rest, &text[skip..]));
            }
            b'?' => {
                let Some((_, after)) = text.split_first() else {
                    return false;
                };
                text = after;
                pattern = rest;
            }
            b'[' => {
                let Some((&c, after)) = text.split_first() else {
                    return false;
                };
                let (matched, rest) = match_set(rest, c);
                if !matched {
                    return false;
                }
                text = after;
                pattern = rest;
            }
            b'\\' if !rest.is_empty() => {
                let Some((&c, after)) = text.split_first() else {
                    return false;
                };
                if c != rest[0] {
                    return false;
                }
                text = after;
                pattern = &rest[1..];
            }
            literal => {
                let Some((&c, after)) = text.split_first() else {
                    return false;
                };
                if c != literal {
                    return false;
                }
                text = after;
                pattern = rest;
            }
        }
    }
    text.is_empty()
}

fn trim_stars(mut pattern: &[u8]) -> &[u8] {
    while let Some((b'*', rest)) = pattern.split_first() {
        pattern = rest;
    }
    pattern
}

/// Matches `c` against the set that follows a `[`; returns whether it
/// matched and the pattern after the closing `]`. An unterminated set ends
/// with the pattern, as in Redis.
fn match_set(mut pattern: &[u8], c: u8) -> (bool, &[u8]) {
    let negate = pattern.first() == Some(&b'^');
    if negate {
        pattern = &pattern[1..];
    }
    let mut matched = false;
    loop {
        match pattern {
            [] => break,
            [b']', rest @ ..] => {
                pattern = rest;
                break;
            }
            [b'\\', escaped, rest @ ..] => {
                matched |= *escaped == c;
                pattern = rest;
            }
            [start, b'-', end, rest @ ..] => {
                let (low, high) = if start <= end {
                    (*start, *end)
                } else {
                    (*end, *start)
                };
                matched |= (low..=high).contains(&c);
                pattern = rest;
            }
            [single, rest @ ..] => {
                matched |= *single == c;
                pattern = rest;
            }
        }
    }
    (matched != negate, pattern)
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn matches_as_redis_does() {
        // (pattern, channel, matches). Every row was checked against
        // redis-server 7.0 with `KEYS`, which uses the same matcher.
        let table = [
            ("socket.io#/#*", "socket.io#/#", true),
            ("socket.io#/#*", "socket.io#/#room#", true),
            ("socket.io#/#*", "socket.io#/chat#", false),
            ("socket.io#/#*", "socket.io-request#/#", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "hllo", true),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h[\\]]llo", "h]llo", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("a\\", "a\\", true),
            ("a**", "a", true),
            ("*", "", true),
            ("?", "", false),
            ("[abc", "b", true),
            ("", "", true),
            ("", "x", false),
            ("abc", "ab", false),
            ("ab", "abc", false),
            ("socket.io#/a\\*b#*", "socket.io#/a*b#", true),
            ("socket.io#/a\\*b#*", "socket.io#/aXb#", false),
            ("socket.io#/a\\[x\\]#*", "socket.io#/a[x]#r#", true),
        ];
        for (pattern, channel, expected) in table {
            assert_eq!(
                pattern_matches(pattern, channel),
                expected,
                "{pattern:?} on {channel:?}"
            );
        }
    }
}
