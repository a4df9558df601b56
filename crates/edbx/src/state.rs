//! Reading an aggregate's state into the caller's own type.
//!
//! The server keeps state as a map of texts: a JSON string verbatim, `null` as `""`, anything
//! else as its compact JSON text (so the string `"42"` and the number `42` are stored alike). The
//! caller's type decides how each text is read, the way `envy` reads environment variables: a
//! `String` field gets the text as stored, a number or `bool` field parses it, an `Option` field
//! is `None` for `""`, and a struct, map or list field parses the text as JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::value::{MapDeserializer, StrDeserializer};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use crate::error::{Error, ErrorKind, Result};

/// A state value as the server stores it: a string verbatim, `null` as `""`, anything else as
/// its compact JSON.
pub(crate) fn state_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Applies one event's payload to a state map, as the server does when it stores the event:
/// each top-level key of an object payload is set to its stored text (a patch event's payload
/// holds the new values of the keys it touched); a payload that is not an object is stored
/// under `_value`, unless it is `null`. Keys are never removed.
pub(crate) fn apply_payload(state: &mut BTreeMap<String, String>, payload: &serde_json::Value) {
    match payload {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                state.insert(key.clone(), state_text(value));
            }
        }
        serde_json::Value::Null => {}
        other => {
            state.insert("_value".to_owned(), state_text(other));
        }
    }
}

/// A field that does not fit the caller's type.
#[derive(Debug)]
pub(crate) struct Mismatch(String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Mismatch {}

impl de::Error for Mismatch {
    fn custom<M: fmt::Display>(message: M) -> Self {
        Mismatch(message.to_string())
    }
}

/// Deserializes `T` from a state map, reporting a misfit as the caller's type not fitting.
pub(crate) fn state_as<T: DeserializeOwned>(state: &BTreeMap<String, String>) -> Result<T> {
    let entries = state
        .iter()
        .map(|(key, text)| (key.as_str(), StateText { key, text }));
    let deserializer = MapDeserializer::<_, Mismatch>::new(entries);
    T::deserialize(deserializer).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!(
                "the aggregate's state does not fit {}: {e}",
                std::any::type_name::<T>()
            ),
        )
        .with_source(e)
    })
}

/// One stored state value, read as the caller's type asks.
struct StateText<'a> {
    key: &'a str,
    text: &'a str,
}

impl<'de> IntoDeserializer<'de, Mismatch> for StateText<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'a> StateText<'a> {
    fn misfit(&self, wanted: &str) -> Mismatch {
        Mismatch(format!(
            "field `{}` holds {}, not {wanted}",
            self.key,
            crate::config::quoted(self.text)
        ))
    }

    fn parse<T: std::str::FromStr>(&self, wanted: &str) -> std::result::Result<T, Mismatch> {
        self.text.trim().parse().map_err(|_| self.misfit(wanted))
    }

    /// The text as JSON, for structured fields.
    fn json(&self, wanted: &str) -> std::result::Result<serde_json::Value, Mismatch> {
        serde_json::from_str(self.text).map_err(|_| self.misfit(wanted))
    }

    fn with_key(&self, e: serde_json::Error) -> Mismatch {
        Mismatch(format!("field `{}`: {e}", self.key))
    }
}

macro_rules! parse_number {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> std::result::Result<V::Value, Mismatch> {
            visitor.$visit(self.parse::<$ty>(stringify!($ty))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for StateText<'de> {
    type Error = Mismatch;

    /// Without a type to go by (e.g. `serde_json::Value`): JSON when the text is JSON, else the
    /// text.
    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        match serde_json::from_str::<serde_json::Value>(self.text) {
            Ok(value) => {
                de::Deserializer::deserialize_any(value, visitor).map_err(|e| self.with_key(e))
            }
            Err(_) => visitor.visit_borrowed_str(self.text),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        match self.text.trim() {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            _ => Err(self.misfit("a boolean")),
        }
    }

    parse_number! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_char<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        let mut chars = self.text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.misfit("one character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        visitor.visit_borrowed_str(self.text)
    }

    fn deserialize_string<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        visitor.visit_borrowed_str(self.text)
    }

    fn deserialize_bytes<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        visitor.visit_borrowed_bytes(self.text.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        visitor.visit_borrowed_bytes(self.text.as_bytes())
    }

    /// The server stores `null` as `""`, so `""` is `None` (an empty string reads as `None`
    /// too: the two are stored alike).
    fn deserialize_option<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        if self.text.is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        if self.text.is_empty() {
            visitor.visit_unit()
        } else {
            Err(self.misfit("null"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        let value = self.json("a JSON list")?;
        de::Deserializer::deserialize_seq(value, visitor).map_err(|e| self.with_key(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        let value = self.json("a JSON list")?;
        de::Deserializer::deserialize_tuple(value, len, visitor).map_err(|e| self.with_key(e))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        let value = self.json("a JSON list")?;
        de::Deserializer::deserialize_tuple_struct(value, name, len, visitor)
            .map_err(|e| self.with_key(e))
    }

    fn deserialize_map<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        let value = self.json("a JSON object")?;
        de::Deserializer::deserialize_map(value, visitor).map_err(|e| self.with_key(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        let value = self.json("a JSON object")?;
        de::Deserializer::deserialize_struct(value, name, fields, visitor)
            .map_err(|e| self.with_key(e))
    }

    /// A unit variant is the text itself (`"paid"`); others are JSON.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        match serde_json::from_str::<serde_json::Value>(self.text) {
            Ok(value @ serde_json::Value::Object(_)) => {
                de::Deserializer::deserialize_enum(value, name, variants, visitor)
                    .map_err(|e| self.with_key(e))
            }
            _ => {
                let text: StrDeserializer<'_, Mismatch> = self.text.into_deserializer();
                de::Deserializer::deserialize_enum(text, name, variants, visitor)
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, Mismatch> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! { identifier }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn state(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Status {
        Paid,
        Open,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Address {
        city: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Customer {
        zip: String,
        vip: bool,
        note: Option<String>,
        total: f64,
        qty: u32,
        status: Status,
        address: Address,
        tags: Vec<String>,
        code: String,
        #[serde(default)]
        absent: Option<u8>,
    }

    #[test]
    fn the_callers_type_decides_how_each_text_reads() {
        // What the server stores for {"zip": "12345", "vip": "true", "note": null, "total": 42.5,
        // "qty": 3, "status": "paid", "address": {"city": "Oslo"}, "tags": ["a"], "code": 17}.
        let stored = state(&[
            ("zip", "12345"),
            ("vip", "true"),
            ("note", ""),
            ("total", "42.5"),
            ("qty", "3"),
            ("status", "paid"),
            ("address", r#"{"city":"Oslo"}"#),
            ("tags", r#"["a"]"#),
            ("code", "17"),
        ]);
        let customer: Customer = state_as(&stored).unwrap();
        assert_eq!(
            customer,
            Customer {
                zip: "12345".into(),
                vip: true,
                note: None,
                total: 42.5,
                qty: 3,
                status: Status::Paid,
                address: Address {
                    city: "Oslo".into()
                },
                tags: vec!["a".into()],
                code: "17".into(),
                absent: None,
            }
        );
        let _ = Status::Open;
    }

    #[test]
    fn a_misfit_names_the_field_the_value_and_the_type() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            qty: u32,
        }
        let e = state_as::<Strict>(&state(&[("qty", "three")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        let message = e.to_string();
        assert!(
            message.contains("`qty`") && message.contains("\"three\""),
            "{message}"
        );
        assert!(message.contains("Strict"), "{message}");
        assert!(!message.contains("from server"), "{message}");
        let e = state_as::<Strict>(&state(&[])).unwrap_err();
        assert!(e.to_string().contains("missing field `qty`"), "{e}");
    }

    #[test]
    fn events_fold_into_stored_texts_and_never_remove_keys() {
        let mut folded = BTreeMap::new();
        apply_payload(
            &mut folded,
            &serde_json::json!({"s": "text", "n": 1.5, "b": true, "z": null, "o": {"b": 1, "a": [1]}}),
        );
        apply_payload(&mut folded, &serde_json::json!({"n": 2}));
        apply_payload(&mut folded, &serde_json::json!(null));
        assert_eq!(
            folded,
            state(&[
                ("s", "text"),
                ("n", "2"),
                ("b", "true"),
                ("z", ""),
                ("o", r#"{"a":[1],"b":1}"#),
            ])
        );
        apply_payload(&mut folded, &serde_json::json!([1]));
        assert_eq!(folded["_value"], "[1]");
    }

    #[test]
    fn untyped_reads_still_guess() {
        let value: serde_json::Value = state_as(&state(&[("n", "3"), ("s", "text")])).unwrap();
        assert_eq!(value, serde_json::json!({"n": 3, "s": "text"}));
    }
}
