//! Checking an aggregate's history against its Merkle root, the way the server computes both.
//!
//! Server 3.19.4's `verifyAggregate` only returns the root it stored; it recomputes nothing. A
//! real check reads the events back and recomputes. The server updates an aggregate's version
//! and root together, in one metadata record, on every append, and never changes an event once
//! written: so the root read with the version (by `get`) is the root of exactly events
//! 1..=version, whatever is appended while the events are read. The recomputation: each event's hash is SHA-256 over the
//! aggregate type, id, the version (8 bytes, big-endian), the (normalized) event type, and for
//! each payload key in sorted order the key and its stored text (a string verbatim, `null` as
//! nothing, anything else as compact JSON); the root hashes pairs of hex hashes up to one,
//! repeating the last of an odd layer.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::Event;

/// The outcome of [`Client::verify`](crate::Client::verify): three ways, because "could not be
/// checked" is not "does not match".
///
/// ```no_run
/// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
/// use edbx::VerifyOutcome;
///
/// let check = client.verify("orders", "ord_1").await?;
/// match check.outcome {
///     VerifyOutcome::Intact => println!("{} events match root {}", check.events, check.merkle_root),
///     VerifyOutcome::Mismatch => eprintln!("tampered or corrupt: {}", check.detail),
///     VerifyOutcome::Unverifiable(why) => eprintln!("could not check ({why:?}): {}", check.detail),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VerifyOutcome {
    /// Every event up to [`Verification::version`] matches its hash, and the hashes give the
    /// root the server stored for that version.
    Intact,
    /// The history does not match: an event's contents do not give its hash, the hashes do
    /// not give the stored root, or events are missing.
    Mismatch,
    /// The history could not be checked; nothing is known about it.
    Unverifiable(Unverifiable),
}

/// Why [`Client::verify`](crate::Client::verify) could not check an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unverifiable {
    /// The aggregate is archived: the server lists none of its events (restore it to check).
    Archived,
    /// The server cannot send the aggregate or one of its events (a reply over its frame
    /// limit, see the crate docs, *Limits*).
    TooLarge,
    /// Writes kept changing the aggregate while it was read, attempt after attempt (only
    /// when the aggregate is too large for `get`, which reads the root and version at once).
    KeptChanging,
}

impl Unverifiable {
    /// A short name: `archived`, `too_large`, `kept_changing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Archived => "archived",
            Self::TooLarge => "too_large",
            Self::KeptChanging => "kept_changing",
        }
    }
}

/// What [`Client::verify`](crate::Client::verify) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// Intact, mismatch, or could not be checked.
    pub outcome: VerifyOutcome,
    /// The Merkle root the server stored for the aggregate at [`version`](Self::version)
    /// (64 hex characters).
    pub merkle_root: String,
    /// The version the stored root was read at; the events up to it are the ones checked
    /// (events appended while the check ran are left for the next one).
    pub version: u64,
    /// The root recomputed from the events read back; `None` when they could not be read.
    pub recomputed_root: Option<String>,
    /// Events read back and checked.
    pub events: u64,
    /// The first event whose stored hash does not match its contents, if any.
    pub first_bad_version: Option<u64>,
    /// In words: what was checked, what did not match, or why it could not be checked.
    pub detail: String,
}

impl Verification {
    /// Whether every event matches its hash and the hashes match the stored root.
    pub fn is_intact(&self) -> bool {
        self.outcome == VerifyOutcome::Intact
    }

    /// Whether the history was read and does not match (never for an aggregate that could not
    /// be checked).
    pub fn is_mismatch(&self) -> bool {
        self.outcome == VerifyOutcome::Mismatch
    }

    /// Why the aggregate could not be checked, if it could not.
    pub fn unverifiable(&self) -> Option<Unverifiable> {
        match self.outcome {
            VerifyOutcome::Unverifiable(why) => Some(why),
            _ => None,
        }
    }

    pub(crate) fn unverifiable_because(
        why: Unverifiable,
        merkle_root: String,
        version: u64,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            outcome: VerifyOutcome::Unverifiable(why),
            merkle_root,
            version,
            recomputed_root: None,
            events: 0,
            first_bad_version: None,
            detail: detail.into(),
        }
    }
}

/// Checks `events` (in version order, as listed) against `merkle_root`, stored for `version`:
/// events after `version` are ignored, events up to it must be exactly 1..=version.
pub(crate) fn check(events: &[Event], merkle_root: String, version: u64) -> Result<Verification> {
    let mut hashes = Vec::new();
    let mut first_bad_version = None;
    let mut missing = None;
    for event in events.iter().take_while(|e| e.version <= version) {
        let expected = hashes.len() as u64 + 1;
        if event.version != expected && missing.is_none() {
            missing = Some(expected);
        }
        if event_hash(event)? != event.hash && first_bad_version.is_none() {
            first_bad_version = Some(event.version);
        }
        hashes.push(event.hash.clone());
    }
    let count = hashes.len() as u64;
    if count < version && missing.is_none() {
        missing = Some(count + 1);
    }
    let recomputed = merkle_root_of(&hashes);
    let (outcome, detail) = if let Some(bad) = first_bad_version {
        (
            VerifyOutcome::Mismatch,
            format!("event {bad}'s contents do not match its stored hash"),
        )
    } else if let Some(gap) = missing {
        (
            VerifyOutcome::Mismatch,
            format!(
                "the aggregate is at version {version} but event {gap} is missing ({count} \
                 listed)"
            ),
        )
    } else if recomputed != merkle_root {
        (
            VerifyOutcome::Mismatch,
            format!(
                "the {count} events' hashes give root {recomputed}, not the stored {merkle_root}"
            ),
        )
    } else {
        (
            VerifyOutcome::Intact,
            format!("events 1 to {version} match their hashes and the stored Merkle root"),
        )
    };
    Ok(Verification {
        outcome,
        merkle_root,
        version,
        recomputed_root: Some(recomputed),
        events: count,
        first_bad_version,
        detail,
    })
}

/// Recomputes an event's hash from what the server lists.
pub(crate) fn event_hash(event: &Event) -> Result<String> {
    #[derive(Deserialize)]
    struct Stored<'a> {
        #[serde(borrow, default)]
        payload: Option<BTreeMap<String, &'a RawValue>>,
    }
    let raw = event
        .raw
        .as_ref()
        .ok_or_else(|| Error::protocol("an event without its JSON cannot be checked"))?;
    let stored: Stored<'_> =
        serde_json::from_str(raw.get()).map_err(|e| Error::decode("event", e))?;
    let mut hasher = Sha256::new();
    hasher.update(event.aggregate_type.as_bytes());
    hasher.update(event.aggregate_id.as_bytes());
    hasher.update(event.version.to_be_bytes());
    hasher.update(event.event_type.as_bytes());
    for (key, value) in stored.payload.unwrap_or_default() {
        hasher.update(key.as_bytes());
        let text = value.get();
        if text.starts_with('"') {
            let decoded: String =
                serde_json::from_str(text).map_err(|e| Error::decode("event payload", e))?;
            hasher.update(decoded.as_bytes());
        } else if text != "null" {
            hasher.update(text.as_bytes());
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// The Merkle root over event hashes (hex strings), as the server computes it.
pub(crate) fn merkle_root_of(hashes: &[String]) -> String {
    if hashes.is_empty() {
        return hex(&Sha256::digest([]));
    }
    let mut layer = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| {
                let right = pair.get(1).unwrap_or(&pair[0]);
                hex(&Sha256::digest(format!("{}{right}", pair[0]).as_bytes()))
            })
            .collect();
    }
    layer.swap_remove(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as the server lists it, its hash computed from its contents.
    fn event(version: u64, payload: serde_json::Value) -> Event {
        let json = serde_json::json!({
            "aggregate_type": "t", "aggregate_id": "a", "event_type": "e", "payload": payload,
            "metadata": {"event_id": "1", "created_at": "2026-01-01T00:00:00Z"},
            "version": version, "hash": "", "merkle_root": "",
        });
        let mut event: Event = serde_json::from_value(json.clone()).unwrap();
        event.raw = Some(crate::RawJson::from_string(json.to_string()).unwrap());
        event.hash = event_hash(&event).unwrap();
        event
    }

    #[test]
    fn a_history_checks_against_the_root_of_its_version_only() {
        let events: Vec<Event> = (1..=3)
            .map(|v| event(v, serde_json::json!({"n": v})))
            .collect();
        let hashes: Vec<String> = events.iter().map(|e| e.hash.clone()).collect();
        // The root stored at version 2; event 3 was appended after it was read.
        let check = check(&events, merkle_root_of(&hashes[..2]), 2).unwrap();
        assert_eq!(check.outcome, VerifyOutcome::Intact, "{check:?}");
        assert_eq!((check.events, check.version), (2, 2));
    }

    #[test]
    fn tampered_missing_or_rerooted_histories_are_mismatches() {
        let mut events: Vec<Event> = (1..=3)
            .map(|v| event(v, serde_json::json!({"n": v})))
            .collect();
        let hashes: Vec<String> = events.iter().map(|e| e.hash.clone()).collect();
        let root = merkle_root_of(&hashes);
        // Contents changed, hash kept.
        let mut tampered = events.clone();
        let json = tampered[1]
            .raw
            .as_ref()
            .unwrap()
            .get()
            .replace("\"n\":2", "\"n\":9");
        tampered[1].raw = Some(crate::RawJson::from_string(json).unwrap());
        let bad = check(&tampered, root.clone(), 3).unwrap();
        assert_eq!(bad.outcome, VerifyOutcome::Mismatch);
        assert_eq!(bad.first_bad_version, Some(2));
        // An event missing.
        events.remove(1);
        let gap = check(&events, root.clone(), 3).unwrap();
        assert!(
            gap.is_mismatch() && gap.detail.contains("event 2 is missing"),
            "{gap:?}"
        );
        // A root that is not theirs.
        let other = check(&events[..1], root, 1).unwrap();
        assert!(
            other.is_mismatch() && other.unverifiable().is_none(),
            "{other:?}"
        );
    }

    #[test]
    fn roots_pair_hex_hashes_and_repeat_the_last_of_an_odd_layer() {
        let empty = merkle_root_of(&[]);
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let a = "a".repeat(64);
        assert_eq!(merkle_root_of(std::slice::from_ref(&a)), a);
        let b = "b".repeat(64);
        let ab = hex(&Sha256::digest(format!("{a}{b}").as_bytes()));
        assert_eq!(merkle_root_of(&[a.clone(), b.clone()]), ab);
        let cc = hex(&Sha256::digest(format!("{b}{b}").as_bytes()));
        let three = hex(&Sha256::digest(format!("{ab}{cc}").as_bytes()));
        assert_eq!(merkle_root_of(&[a, b.clone(), b]), three);
    }
}
