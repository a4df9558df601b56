//! The checkpoint: where a subscription stands, as a short versioned text.
//!
//! Format 1 (`esub1`), five `;`-separated fields, each `name=value`:
//!
//! | field | value |
//! | --- | --- |
//! | `t` | the aggregate types followed, `+`-separated and sorted, or `*` for all |
//! | `f` | the floor: milliseconds since the epoch, or `-` before the first pass |
//! | `p` | a pass over the aggregates in key order: `-` (none), `?` (not started), `CAP` or `CAP@S:TYPE:ID:VERSION` (the aggregate it has reached, `S` = `a` active or `r` archived) |
//! | `w` | the window: `TYPE:ID:VERSION:MILLIS` entries, `,`-separated, or `-` |
//!
//! Types and ids cannot hold `;`, `:`, `,`, `+` or `@` (the server's own rules, checked here
//! again), so the text needs no escaping. The text is opaque to users: they store it and hand it
//! back. A later format gets a new number, and this one stays readable.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::validate;

/// The format written by this version of the client.
const FORMAT: &str = "esub1";
/// Longest checkpoint text accepted (a window of the most entries written is ~200 KB).
const MAX_TEXT: usize = 1 << 20;
/// Most window entries a checkpoint carries; the window itself may hold more (see
/// [`Position::encode`]).
pub(crate) const MAX_WINDOW_ENTRIES: usize = 2_000;

/// An aggregate's address.
pub(crate) type Key = (String, String);

/// What the subscription knows about one aggregate of its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Every version up to this one is delivered (or was skipped on purpose).
    pub through: u64,
    /// The latest time (ms) it was seen at: its listed update or a delivered event. The entry
    /// is kept while this is at or after the floor.
    pub at: i64,
}

/// A key-order pass in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Events up to this time (ms, inclusive) are delivered by the pass; `None` until the pass
    /// has looked at the store.
    pub cap: Option<i64>,
    /// The last aggregate the pass reached, in key order: scope (`'a'` or `'r'`), key, and the
    /// version delivered through.
    pub after: Option<(char, Key, u64)>,
}

/// Where a subscription stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// The aggregate types followed, sorted; empty for all.
    pub types: Vec<String>,
    /// Every event written before this time (ms) is delivered, except those of the aggregates
    /// in `window` after their version. `i64::MIN` before the first pass.
    pub floor: i64,
    pub pass: Option<Pass>,
    pub window: BTreeMap<Key, Seen>,
}

impl Position {
    /// Text of this position. The window's entries seen last are kept when there are more than
    /// [`MAX_WINDOW_ENTRIES`]: leaving one out is safe (its events since the floor may be
    /// delivered again after a restart, never skipped).
    pub(crate) fn encode(&self) -> Checkpoint {
        use fmt::Write;
        let mut out = String::with_capacity(64 + 24 * self.window.len().min(MAX_WINDOW_ENTRIES));
        out.push_str(FORMAT);
        out.push_str(";t=");
        if self.types.is_empty() {
            out.push('*');
        } else {
            out.push_str(&self.types.join("+"));
        }
        out.push_str(";f=");
        if self.floor == i64::MIN {
            out.push('-');
        } else {
            let _ = write!(out, "{}", self.floor);
        }
        out.push_str(";p=");
        match &self.pass {
            None => out.push('-'),
            Some(Pass { cap: None, .. }) => out.push('?'),
            Some(Pass {
                cap: Some(cap),
                after,
            }) => {
                let _ = write!(out, "{cap}");
                if let Some((scope, (t, i), v)) = after {
                    let _ = write!(out, "@{scope}:{t}:{i}:{v}");
                }
            }
        }
        out.push_str(";w=");
        if self.window.is_empty() {
            out.push('-');
        } else {
            let mut entries: Vec<_> = self.window.iter().collect();
            if entries.len() > MAX_WINDOW_ENTRIES {
                entries.sort_by_key(|(_, seen)| std::cmp::Reverse(seen.at));
                entries.truncate(MAX_WINDOW_ENTRIES);
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            for (n, ((t, i), seen)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{t}:{i}:{}:{}", seen.through, seen.at);
            }
        }
        Checkpoint(out.into())
    }

    /// Reads a checkpoint's text.
    pub(crate) fn decode(text: &str) -> Result<Position> {
        if text.len() > MAX_TEXT {
            return Err(invalid(format!(
                "it is {} bytes long; checkpoints are at most {MAX_TEXT}",
                text.len()
            )));
        }
        let mut fields = text.split(';');
        let format = fields.next().unwrap_or_default();
        if format != FORMAT {
            let newer = format
                .strip_prefix("esub")
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 1);
            return Err(invalid(if newer {
                format!("it is in format {format}, newer than this client's {FORMAT}")
            } else {
                format!("it does not start with {FORMAT}")
            }));
        }
        let mut field = |name: &str| -> Result<&str> {
            let part = fields
                .next()
                .ok_or_else(|| invalid(format!("field {name} is missing")))?;
            part.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .ok_or_else(|| invalid(format!("expected field {name}, found {part:?}")))
        };
        let types = decode_types(field("t")?)?;
        let floor = match field("f")? {
            "-" => i64::MIN,
            ms => millis("floor", ms)?,
        };
        let pass = decode_pass(field("p")?)?;
        let window = decode_window(field("w")?)?;
        if fields.next().is_some() {
            return Err(invalid("it has fields after w"));
        }
        Ok(Position {
            types,
            floor,
            pass,
            window,
        })
    }
}

fn decode_types(text: &str) -> Result<Vec<String>> {
    if text == "*" {
        return Ok(Vec::new());
    }
    let types: Vec<String> = text.split('+').map(str::to_owned).collect();
    for t in &types {
        validate::aggregate_type(t).map_err(|e| invalid(e.message()))?;
    }
    if !types.windows(2).all(|w| w[0] < w[1]) {
        return Err(invalid("its aggregate types are not sorted and distinct"));
    }
    Ok(types)
}

fn decode_pass(text: &str) -> Result<Option<Pass>> {
    match text {
        "-" => return Ok(None),
        "?" => {
            return Ok(Some(Pass {
                cap: None,
                after: None,
            }));
        }
        _ => {}
    }
    let (cap, after) = match text.split_once('@') {
        None => (text, None),
        Some((cap, after)) => (cap, Some(after)),
    };
    let cap = millis("pass cap", cap)?;
    let after = match after {
        None => None,
        Some(after) => {
            let parts: Vec<&str> = after.split(':').collect();
            let [scope, t, i, v] = parts[..] else {
                return Err(invalid(format!(
                    "pass position {after:?} is not SCOPE:TYPE:ID:VERSION"
                )));
            };
            let scope = match scope {
                "a" => 'a',
                "r" => 'r',
                other => {
                    return Err(invalid(format!("pass scope {other:?} is neither a nor r")));
                }
            };
            let key = key(t, i)?;
            Some((scope, key, version(v)?))
        }
    };
    Ok(Some(Pass {
        cap: Some(cap),
        after,
    }))
}

fn decode_window(text: &str) -> Result<BTreeMap<Key, Seen>> {
    let mut window = BTreeMap::new();
    if text == "-" {
        return Ok(window);
    }
    for entry in text.split(',') {
        let parts: Vec<&str> = entry.split(':').collect();
        let [t, i, v, at] = parts[..] else {
            return Err(invalid(format!(
                "window entry {entry:?} is not TYPE:ID:VERSION:MILLIS"
            )));
        };
        let seen = Seen {
            through: version(v)?,
            at: millis("window time", at)?,
        };
        if window.insert(key(t, i)?, seen).is_some() {
            return Err(invalid(format!("window entry {t}:{i} appears twice")));
        }
    }
    Ok(window)
}

fn key(aggregate_type: &str, aggregate_id: &str) -> Result<Key> {
    validate::aggregate_type(aggregate_type).map_err(|e| invalid(e.message()))?;
    validate::aggregate_id(aggregate_id).map_err(|e| invalid(e.message()))?;
    Ok((aggregate_type.to_owned(), aggregate_id.to_owned()))
}

fn version(text: &str) -> Result<u64> {
    text.parse()
        .map_err(|_| invalid(format!("version {text:?} is not a number")))
}

fn millis(what: &str, text: &str) -> Result<i64> {
    match text.parse::<i64>() {
        Ok(ms) if ms != i64::MIN => Ok(ms),
        _ => Err(invalid(format!(
            "{what} {text:?} is not a time in milliseconds"
        ))),
    }
}

fn invalid(why: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidCheckpoint,
        format!("not a subscription checkpoint of this client: {why}"),
    )
}

/// Where a subscription stands, as an opaque, versioned text: store it, and hand it back to
/// [`Subscribe::from_checkpoint`](crate::Subscribe::from_checkpoint) to go on from there.
///
/// Every [`SubscribedEvent`](crate::SubscribedEvent) carries the checkpoint just after it. The
/// text is meant to be stored as is (a database column, a file); its content is not an API and
/// may change, but a checkpoint written by this version stays readable by later ones (the text
/// starts with its format's name, `esub1`). It is short: a few dozen bytes plus ~25 bytes for
/// each aggregate written within the subscription's overlap window (at most
/// 2,000 of them).
///
/// Parsing checks it whole and fails with [`ErrorKind::InvalidCheckpoint`]:
///
/// ```
/// let err = "not a checkpoint".parse::<edbx::Checkpoint>().unwrap_err();
/// assert_eq!(err.kind(), edbx::ErrorKind::InvalidCheckpoint);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint(Arc<str>);

impl Checkpoint {
    /// The text, to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a stored checkpoint text ([`ErrorKind::InvalidCheckpoint`] if it is not one).
    pub fn parse(text: &str) -> Result<Checkpoint> {
        Position::decode(text)?;
        Ok(Checkpoint(text.into()))
    }

    pub(crate) fn position(&self) -> Position {
        Position::decode(&self.0).expect("checked when made")
    }
}

impl FromStr for Checkpoint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Checkpoint> {
        Checkpoint::parse(text)
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checkpoint({:?})", &*self.0)
    }
}

impl AsRef<str> for Checkpoint {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Position {
        let mut window = BTreeMap::new();
        window.insert(
            ("orders".to_owned(), "o-1".to_owned()),
            Seen {
                through: 4,
                at: 1_700_000_000_500,
            },
        );
        window.insert(
            ("users".to_owned(), "U_2".to_owned()),
            Seen {
                through: 1,
                at: 1_700_000_000_900,
            },
        );
        Position {
            types: vec!["orders".to_owned(), "users".to_owned()],
            floor: 1_700_000_000_000,
            pass: Some(Pass {
                cap: Some(1_700_000_001_000),
                after: Some(('a', ("orders".to_owned(), "o-9".to_owned()), 3)),
            }),
            window,
        }
    }

    #[test]
    fn round_trips() {
        let position = sample();
        let text = position.encode();
        assert_eq!(
            text.as_str(),
            "esub1;t=orders+users;f=1700000000000;p=1700000001000@a:orders:o-9:3;\
             w=orders:o-1:4:1700000000500,users:U_2:1:1700000000900"
        );
        assert_eq!(
            Checkpoint::parse(text.as_str()).unwrap().position(),
            position
        );
        let start = Position {
            types: Vec::new(),
            floor: i64::MIN,
            pass: Some(Pass {
                cap: None,
                after: None,
            }),
            window: BTreeMap::new(),
        };
        assert_eq!(start.encode().as_str(), "esub1;t=*;f=-;p=?;w=-");
        assert_eq!(start.encode().position(), start);
    }

    #[test]
    fn malformed_texts_are_refused_with_a_reason() {
        for (text, why) in [
            ("", "does not start with esub1"),
            ("esub2;t=*", "newer than this client"),
            ("esub1;t=*;f=-;p=-", "field w is missing"),
            ("esub1;t=Orders;f=-;p=-;w=-", "aggregate_type"),
            ("esub1;t=b+a;f=-;p=-;w=-", "not sorted"),
            ("esub1;t=*;f=12x;p=-;w=-", "floor"),
            ("esub1;t=*;f=1;p=5@x:a:b:1;w=-", "neither a nor r"),
            ("esub1;t=*;f=1;p=5@a:a:b;w=-", "SCOPE:TYPE:ID:VERSION"),
            ("esub1;t=*;f=1;p=-;w=a:b:1", "TYPE:ID:VERSION:MILLIS"),
            ("esub1;t=*;f=1;p=-;w=a:b:1:2,a:b:3:4", "twice"),
            ("esub1;t=*;f=1;p=-;w=a:b c:1:2", "aggregate_id"),
            ("esub1;t=*;f=1;p=-;w=-;x=1", "after w"),
            ("esub1;f=1;t=*;p=-;w=-", "expected field t"),
        ] {
            let err = Checkpoint::parse(text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidCheckpoint, "{text}");
            assert!(err.message().contains(why), "{text}: {err}");
        }
        let huge = format!("esub1;t=*;f=1;p=-;w={}", "a:b:1:2,".repeat(200_000));
        assert!(
            Checkpoint::parse(&huge)
                .unwrap_err()
                .message()
                .contains("at most")
        );
    }

    #[test]
    fn a_large_window_keeps_its_latest_entries() {
        let mut position = sample();
        position.window.clear();
        for n in 0..(MAX_WINDOW_ENTRIES as i64 + 10) {
            position.window.insert(
                ("t".to_owned(), format!("i{n:05}")),
                Seen { through: 1, at: n },
            );
        }
        let kept = position.encode().position().window;
        assert_eq!(kept.len(), MAX_WINDOW_ENTRIES);
        assert!(!kept.contains_key(&("t".to_owned(), "i00009".to_owned())));
        assert!(kept.contains_key(&("t".to_owned(), "i00010".to_owned())));
    }
}
