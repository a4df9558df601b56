//! Reading and editing the `config.toml` that `dbx` writes, with `toml_edit` (comments and
//! layout are kept).

use toml_edit::{DocumentMut, Item, Table, Value};

/// Splits a dotted key `a.b.key` into (`["a", "b"]`, `key`).
fn split_key(dotted: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let key = parts.pop().unwrap_or_default();
    (parts, key)
}

fn table<'a>(doc: &'a DocumentMut, path: &[&str]) -> Option<&'a Table> {
    path.iter()
        .try_fold(doc.as_table(), |table, name| table.get(name)?.as_table())
}

fn table_mut<'a>(doc: &'a mut DocumentMut, path: &[&str]) -> Option<&'a mut Table> {
    path.iter().try_fold(doc.as_table_mut(), |table, name| {
        table.get_mut(name)?.as_table_mut()
    })
}

/// The value of `dotted` (e.g. `no_noise`, `socket.bind_addr`, `tenants.multi_tenant`): a
/// string's text, or any other value as TOML text (`false`, `7070`).
pub(crate) fn get(toml: &str, dotted: &str) -> Option<String> {
    let doc: DocumentMut = toml.parse().ok()?;
    let (path, key) = split_key(dotted);
    let value = table(&doc, &path)?.get(key)?.as_value()?;
    Some(match value {
        Value::String(s) => s.value().clone(),
        other => other.to_string().trim().to_owned(),
    })
}

/// Replaces the value of an existing `dotted` key; `None` when the file does not parse or the
/// key is not where it should be.
pub(crate) fn set(toml: &str, dotted: &str, value: impl Into<Value>) -> Option<String> {
    let mut doc: DocumentMut = toml.parse().ok()?;
    let (path, key) = split_key(dotted);
    let table = table_mut(&mut doc, &path)?;
    let old = table.get(key)?.as_value()?;
    // Keep the spacing and any comment around the old value.
    let mut new = value.into();
    *new.decor_mut() = old.decor().clone();
    table[key] = Item::Value(new);
    Some(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"port = 7070
data_dir = "/tmp/x/data"
no_noise = false
verbose_responses = true

[plugin_queue.prune]
done_ttl_secs = 86400

[socket]
bind_addr = "0.0.0.0:6363" # the control port

[tenants]
multi_tenant = false
shard_count = 16
"#;

    #[test]
    fn get_top_level_and_tables() {
        assert_eq!(get(SAMPLE, "port").as_deref(), Some("7070"));
        assert_eq!(get(SAMPLE, "no_noise").as_deref(), Some("false"));
        assert_eq!(
            get(SAMPLE, "socket.bind_addr").as_deref(),
            Some("0.0.0.0:6363")
        );
        assert_eq!(
            get(SAMPLE, "tenants.multi_tenant").as_deref(),
            Some("false")
        );
        assert_eq!(
            get(SAMPLE, "plugin_queue.prune.done_ttl_secs").as_deref(),
            Some("86400")
        );
        assert_eq!(get(SAMPLE, "bind_addr"), None);
        assert_eq!(get(SAMPLE, "socket.nope"), None);
        assert_eq!(get("not = [toml", "not"), None);
    }

    #[test]
    fn set_replaces_only_the_key_and_keeps_the_rest() {
        let out = set(SAMPLE, "socket.bind_addr", "127.0.0.1:4000").unwrap();
        assert_eq!(
            get(&out, "socket.bind_addr").as_deref(),
            Some("127.0.0.1:4000")
        );
        assert!(
            out.contains("# the control port"),
            "comments are kept:\n{out}"
        );
        let out = set(&out, "port", 7171).unwrap();
        assert_eq!(get(&out, "port").as_deref(), Some("7171"));
        assert_eq!(get(&out, "tenants.shard_count").as_deref(), Some("16"));
        assert!(set(SAMPLE, "bind_addr", "x").is_none());
        assert!(set(SAMPLE, "socket.missing", 1).is_none());
    }
}
