//! Minimal, line-based access to the `config.toml` that `dbx` writes (`toml::to_string_pretty`
//! output: `key = value` lines, `[table]` headers, no multi-line values for the keys we touch).

/// Splits a dotted key `a.b.key` into (`a.b`, `key`); a key without a dot is top-level (`""`).
fn split_key(dotted: &str) -> (&str, &str) {
    match dotted.rfind('.') {
        Some(i) => (&dotted[..i], &dotted[i + 1..]),
        None => ("", dotted),
    }
}

/// Table name of a header line (`[socket]`, `[[plugins]]`), or `None` for other lines.
fn header(line: &str) -> Option<&str> {
    let t = line.trim();
    if !t.starts_with('[') {
        return None;
    }
    let t = t.trim_start_matches('[');
    let end = t.find(']')?;
    Some(t[..end].trim())
}

/// If `line` assigns `key`, returns the raw value text (after `=`, trimmed).
fn assignment<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(key)?;
    let rest = rest.trim_start().strip_prefix('=')?;
    Some(rest.trim())
}

/// Raw value text of `dotted` (e.g. `no_noise`, `socket.bind_addr`, `tenants.multi_tenant`).
pub(crate) fn get<'a>(toml: &'a str, dotted: &str) -> Option<&'a str> {
    let (table, key) = split_key(dotted);
    let mut current = "";
    for line in toml.lines() {
        if let Some(h) = header(line) {
            current = h;
            continue;
        }
        if current == table {
            if let Some(value) = assignment(line, key) {
                return Some(value);
            }
        }
    }
    None
}

/// Replaces the value of an existing `dotted` key with `raw_value` (TOML text, e.g. `"\"x\""`).
/// Returns `None` when the key is not where we expect it.
pub(crate) fn set(toml: &str, dotted: &str, raw_value: &str) -> Option<String> {
    let (table, key) = split_key(dotted);
    let mut current = "";
    let mut out = String::with_capacity(toml.len() + raw_value.len());
    let mut replaced = false;
    for line in toml.split_inclusive('\n') {
        if let Some(h) = header(line) {
            current = h;
        } else if !replaced && current == table && assignment(line, key).is_some() {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(indent);
            out.push_str(key);
            out.push_str(" = ");
            out.push_str(raw_value);
            if line.ends_with('\n') {
                out.push('\n');
            }
            replaced = true;
            continue;
        }
        out.push_str(line);
    }
    replaced.then_some(out)
}

/// Strips the quotes of a simple basic string (`"abc"` → `abc`); other values are returned as-is.
pub(crate) fn unquote(raw: &str) -> &str {
    raw.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| !s.contains('\\') && !s.contains('"'))
        .unwrap_or(raw)
}

/// Quotes a string as a TOML basic string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
bind_addr = "0.0.0.0:6363"

[tenants]
multi_tenant = false
shard_count = 16

[auth]
issuer = "eventdbx://self"
"#;

    #[test]
    fn get_top_level_and_tables() {
        assert_eq!(get(SAMPLE, "port"), Some("7070"));
        assert_eq!(get(SAMPLE, "no_noise"), Some("false"));
        assert_eq!(get(SAMPLE, "socket.bind_addr"), Some("\"0.0.0.0:6363\""));
        assert_eq!(get(SAMPLE, "tenants.multi_tenant"), Some("false"));
        assert_eq!(
            get(SAMPLE, "plugin_queue.prune.done_ttl_secs"),
            Some("86400")
        );
        assert_eq!(get(SAMPLE, "bind_addr"), None);
        assert_eq!(get(SAMPLE, "tenants.shard"), None);
        assert_eq!(get(SAMPLE, "socket.nope"), None);
    }

    #[test]
    fn set_replaces_only_the_key_in_its_table() {
        let out = set(SAMPLE, "socket.bind_addr", &quote("127.0.0.1:4000")).unwrap();
        assert_eq!(get(&out, "socket.bind_addr"), Some("\"127.0.0.1:4000\""));
        assert_eq!(out, SAMPLE.replace("0.0.0.0:6363", "127.0.0.1:4000"));
        assert!(set(SAMPLE, "bind_addr", "\"x\"").is_none());
        assert!(set(SAMPLE, "socket.missing", "1").is_none());
    }

    #[test]
    fn unquote_and_quote() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("true"), "true");
        assert_eq!(unquote("\"a\\\"b\""), "\"a\\\"b\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
