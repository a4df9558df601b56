//! Checking an aggregate's history against its Merkle root, the way the server computes both.
//!
//! Server 3.19.4's `verifyAggregate` only returns the root it stored; it recomputes nothing. A
//! real check reads the events back and recomputes: each event's hash is SHA-256 over the
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

/// The outcome of [`Client::verify`](crate::Client::verify).
///
/// ```no_run
/// # async fn demo(client: edbx::Client) -> edbx::Result<()> {
/// let check = client.verify("orders", "ord_1").await?;
/// if !check.is_intact() {
///     eprintln!("history does not match its root: {check:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// The Merkle root the server stored for the aggregate (64 hex characters).
    pub merkle_root: String,
    /// The root recomputed from the events read back; `None` when they cannot be read (the
    /// server lists no events of an archived aggregate).
    pub recomputed_root: Option<String>,
    /// Events read back and checked.
    pub events: u64,
    /// The first event whose stored hash does not match its contents, if any.
    pub first_bad_version: Option<u64>,
}

impl Verification {
    /// Whether every event matches its hash and the hashes match the stored root.
    pub fn is_intact(&self) -> bool {
        self.first_bad_version.is_none()
            && self.recomputed_root.as_deref() == Some(self.merkle_root.as_str())
    }
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
pub(crate) fn merkle_root(hashes: &[String]) -> String {
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

    #[test]
    fn roots_pair_hex_hashes_and_repeat_the_last_of_an_odd_layer() {
        let empty = merkle_root(&[]);
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let a = "a".repeat(64);
        assert_eq!(merkle_root(std::slice::from_ref(&a)), a);
        let b = "b".repeat(64);
        let ab = hex(&Sha256::digest(format!("{a}{b}").as_bytes()));
        assert_eq!(merkle_root(&[a.clone(), b.clone()]), ab);
        let cc = hex(&Sha256::digest(format!("{b}{b}").as_bytes()));
        let three = hex(&Sha256::digest(format!("{ab}{cc}").as_bytes()));
        assert_eq!(merkle_root(&[a, b.clone(), b]), three);
    }
}
