//! The server's RFC 3339 times as milliseconds since the epoch (what its filters compare).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch of an RFC 3339 time as the server writes it
/// (`2026-01-02T03:04:05.123456789Z`); `None` if it is not one.
pub(crate) fn ms(rfc3339: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(rfc3339.trim()).ok()?;
    let since = at.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// This machine's time, in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_times_read_as_milliseconds() {
        assert_eq!(ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            ms("2026-01-02T03:04:05.123456789Z"),
            Some(1_767_323_045_123)
        );
        assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ms("yesterday"), None);
    }
}
