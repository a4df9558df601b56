//! Whether a write whose outcome is unknown was applied, decided from the aggregate's events.
//!
//! The import sends an aggregate's lines one at a time and sends nothing more of an aggregate
//! after a write whose outcome it does not know, so such a write is always the last one the
//! import sent to its aggregate. Whether it landed is then read from what follows the
//! aggregate's last applied line. When the events cannot tell (identical events, or another
//! writer in between), the line stays unknown: guessing could apply it twice or lose it.

use edbx::Event;

use crate::event_line::EventLine;

/// The last line of an aggregate that the import knows was applied.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The version it produced, when the server echoed it.
    pub version: Option<u64>,
    /// The line itself, kept only when the version is not known.
    pub line: Option<EventLine>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Applied, as this version.
    Landed(u64),
    /// Not applied: safe to send.
    NotLanded,
    /// Cannot tell, and why.
    Undecided(String),
}

/// Decides whether `line` was applied, given the aggregate's `events` (oldest first) and the
/// import's last applied line of that aggregate before it.
pub fn decide(line: &EventLine, previous: Option<&Applied>, events: &[Event]) -> Decision {
    let Some(last) = events.last() else {
        return Decision::NotLanded;
    };
    match previous {
        // The version of the line before is known: the write landed iff an event after it is
        // this line.
        Some(Applied {
            version: Some(version),
            ..
        }) => events
            .iter()
            .find(|e| e.version > *version && line.matches(e))
            .map_or(Decision::NotLanded, |e| Decision::Landed(e.version)),
        // The server sends no echoes: compare the last event with this line and the one before.
        Some(Applied {
            version: None,
            line: previous,
        }) => {
            let is_this = line.matches(last);
            let is_previous = previous.as_ref().is_some_and(|p| p.matches(last));
            match (is_this, is_previous) {
                (true, false) => Decision::Landed(last.version),
                (false, true) => Decision::NotLanded,
                (true, true) => Decision::Undecided(
                    "it is identical to the line before it, and the server sends no versions \
                     (verbose_responses = false)"
                        .to_owned(),
                ),
                (false, false) => Decision::Undecided(
                    "the aggregate's last event is neither this line nor the one before: \
                     another writer changed it"
                        .to_owned(),
                ),
            }
        }
        // The aggregate's first line in this import.
        None => {
            let matching: Vec<&Event> = events.iter().filter(|e| line.matches(e)).collect();
            match matching.as_slice() {
                [] => Decision::NotLanded,
                [only] if only.version == last.version => Decision::Landed(only.version),
                _ => Decision::Undecided(
                    "the aggregate already held an event identical to this line".to_owned(),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn line(kind: &str, n: i64) -> EventLine {
        EventLine {
            aggregate_type: "t".into(),
            aggregate_id: "1".into(),
            event_type: kind.into(),
            payload: json!({ "n": n }),
            note: None,
            metadata: None,
            version: None,
            created_at: None,
            event_id: None,
            issued_by: None,
        }
    }

    fn event(version: u64, kind: &str, n: i64) -> Event {
        serde_json::from_value(json!({
            "aggregate_type": "t", "aggregate_id": "1",
            "event_type": kind.replace('.', "_"), "event_type_raw": kind,
            "payload": { "n": n }, "version": version,
            "metadata": { "event_id": "1", "created_at": "2026-01-01T00:00:00Z" },
        }))
        .unwrap()
    }

    #[test]
    fn with_versions_the_event_after_the_previous_line_decides() {
        let previous = Applied {
            version: Some(2),
            line: None,
        };
        let history = [event(1, "a", 1), event(2, "a", 1)];
        // Identical content is no trap when the version is known.
        assert_eq!(
            decide(&line("a", 1), Some(&previous), &history),
            Decision::NotLanded
        );
        let landed = [event(1, "a", 1), event(2, "a", 1), event(3, "a", 1)];
        assert_eq!(
            decide(&line("a", 1), Some(&previous), &landed),
            Decision::Landed(3)
        );
        // Matches the type as written or normalized.
        let dotted = [event(1, "a", 1), event(2, "a", 1), event(3, "x.y", 5)];
        assert_eq!(
            decide(&line("x.y", 5), Some(&previous), &dotted),
            Decision::Landed(3)
        );
        assert_eq!(
            decide(&line("x.y", 6), Some(&previous), &dotted),
            Decision::NotLanded
        );
    }

    #[test]
    fn without_versions_the_last_event_decides_or_the_line_stays_unknown() {
        let previous = Applied {
            version: None,
            line: Some(line("a", 1)),
        };
        let history = [event(1, "a", 1)];
        assert_eq!(
            decide(&line("b", 2), Some(&previous), &history),
            Decision::NotLanded
        );
        let landed = [event(1, "a", 1), event(2, "b", 2)];
        assert_eq!(
            decide(&line("b", 2), Some(&previous), &landed),
            Decision::Landed(2)
        );
        assert!(matches!(
            decide(&line("a", 1), Some(&previous), &history),
            Decision::Undecided(why) if why.contains("identical")
        ));
        let other_writer = [event(1, "a", 1), event(2, "c", 9)];
        assert!(matches!(
            decide(&line("b", 2), Some(&previous), &other_writer),
            Decision::Undecided(why) if why.contains("another writer")
        ));
    }

    #[test]
    fn an_aggregates_first_line() {
        assert_eq!(decide(&line("a", 1), None, &[]), Decision::NotLanded);
        assert_eq!(
            decide(&line("a", 1), None, &[event(1, "a", 1)]),
            Decision::Landed(1)
        );
        assert_eq!(
            decide(&line("a", 1), None, &[event(1, "z", 0)]),
            Decision::NotLanded
        );
        assert!(matches!(
            decide(&line("a", 1), None, &[event(1, "a", 1), event(2, "a", 1)]),
            Decision::Undecided(_)
        ));
    }
}
