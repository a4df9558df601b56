//! Named connection settings in a TOML file, readable by its owner only:
//! `$EDBX_CONFIG`, else `$XDG_CONFIG_HOME/edbx/config.toml`, else `~/.config/edbx/config.toml`.
//!
//! ```toml
//! current = "local"
//!
//! [profiles.local]
//! host = "127.0.0.1"
//! port = 6363
//! tenant = "default"
//! token_file = "/home/me/.eventdbx.token"   # or: token = "…"
//! no_noise = false
//! timeout = 10.0
//! ```

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

use crate::exit::{Failure, Outcome};

/// One profile's settings (all optional).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tenant: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub no_noise: Option<bool>,
    pub timeout: Option<f64>,
}

/// Where the config file is.
pub fn config_path() -> Outcome<PathBuf> {
    if let Some(path) = std::env::var_os("EDBX_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => {
                return Err(Failure::usage(
                    "cannot locate the config file: set EDBX_CONFIG or HOME",
                ));
            }
        },
    };
    Ok(base.join("edbx").join("config.toml"))
}

fn read(path: &Path) -> Outcome<DocumentMut> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.parse().map_err(|e| {
            Failure::usage(format!("{} is not valid TOML: {e}", path.display()))
                .hint("fix or remove the file")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DocumentMut::new()),
        Err(e) => Err(Failure::usage(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the file readable and writable by its owner only (it may hold tokens).
fn write(path: &Path, doc: &DocumentMut) -> Outcome {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("toml.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::io::Write::write_all(&mut file, doc.to_string().as_bytes())?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn profiles_mut(doc: &mut DocumentMut) -> &mut Table {
    if !doc.contains_table("profiles") {
        let mut table = Table::new();
        table.set_implicit(true);
        doc["profiles"] = Item::Table(table);
    }
    doc["profiles"].as_table_mut().expect("profiles is a table")
}

/// The profile `name`, or the current one when `name` is `None` (none is fine: no file, or
/// no current profile).
pub fn load(name: Option<&str>) -> Outcome<Option<(String, Profile)>> {
    let path = config_path()?;
    let doc = read(&path)?;
    let name = match name {
        Some(name) => name.to_owned(),
        None => match doc.get("current").and_then(Item::as_str) {
            Some(current) => current.to_owned(),
            None => return Ok(None),
        },
    };
    let table = doc
        .get("profiles")
        .and_then(|p| p.get(&name))
        .and_then(Item::as_table)
        .ok_or_else(|| {
            Failure::usage(format!("no profile {name:?} in {}", path.display()))
                .hint("`edbx profile list` shows them; `edbx profile add NAME` makes one")
        })?;
    let text = |key: &str| table.get(key).and_then(Item::as_str).map(str::to_owned);
    let profile = Profile {
        host: text("host"),
        port: table
            .get("port")
            .and_then(Item::as_integer)
            .and_then(|p| u16::try_from(p).ok()),
        tenant: text("tenant"),
        token: text("token"),
        token_file: text("token_file").map(PathBuf::from),
        no_noise: table.get("no_noise").and_then(Item::as_bool),
        timeout: table
            .get("timeout")
            .and_then(|t| t.as_float().or_else(|| t.as_integer().map(|i| i as f64))),
    };
    Ok(Some((name, profile)))
}

/// Adds or replaces profile `name`; the first profile becomes the current one.
pub fn add(name: &str, profile: &Profile) -> Outcome<PathBuf> {
    check_name(name)?;
    let path = config_path()?;
    let mut doc = read(&path)?;
    let mut table = Table::new();
    if let Some(host) = &profile.host {
        table["host"] = value(host.as_str());
    }
    if let Some(port) = profile.port {
        table["port"] = value(i64::from(port));
    }
    if let Some(tenant) = &profile.tenant {
        table["tenant"] = value(tenant.as_str());
    }
    if let Some(file) = &profile.token_file {
        table["token_file"] = value(file.display().to_string());
    } else if let Some(token) = &profile.token {
        table["token"] = value(token.as_str());
    }
    if let Some(no_noise) = profile.no_noise {
        table["no_noise"] = value(no_noise);
    }
    if let Some(timeout) = profile.timeout {
        table["timeout"] = value(timeout);
    }
    profiles_mut(&mut doc)[name] = Item::Table(table);
    if doc.get("current").is_none() {
        doc["current"] = value(name);
    }
    write(&path, &doc)?;
    Ok(path)
}

/// `(name, summary, is_current)` of every profile; tokens are never shown.
pub fn list() -> Outcome<Vec<serde_json::Value>> {
    let doc = read(&config_path()?)?;
    let current = doc.get("current").and_then(Item::as_str).unwrap_or("");
    let Some(profiles) = doc.get("profiles").and_then(Item::as_table) else {
        return Ok(Vec::new());
    };
    Ok(profiles
        .iter()
        .filter_map(|(name, item)| {
            let table = item.as_table()?;
            let get = |key: &str| {
                table
                    .get(key)
                    .map(|v| v.to_string().trim().trim_matches('"').to_owned())
            };
            // Where the token comes from, never the token.
            let token = if table.contains_key("token_file") {
                format!("from {}", get("token_file").unwrap_or_default())
            } else if table.contains_key("token") {
                "stored".to_owned()
            } else {
                "none".to_owned()
            };
            Some(serde_json::json!({
                "name": name,
                "current": name == current,
                "host": get("host").unwrap_or_else(|| "127.0.0.1".into()),
                "port": get("port").and_then(|p| p.parse::<u16>().ok()).unwrap_or(6363),
                "tenant": get("tenant"),
                "token": token,
            }))
        })
        .collect())
}

/// Makes `name` the current profile.
pub fn use_profile(name: &str) -> Outcome {
    let path = config_path()?;
    let mut doc = read(&path)?;
    if !profiles_mut(&mut doc).contains_key(name) {
        return Err(Failure::usage(format!("no profile {name:?}")).hint("`edbx profile list`"));
    }
    doc["current"] = value(name);
    write(&path, &doc)
}

/// Removes profile `name` (and unsets it as current).
pub fn remove(name: &str) -> Outcome {
    let path = config_path()?;
    let mut doc = read(&path)?;
    if profiles_mut(&mut doc).remove(name).is_none() {
        return Err(Failure::usage(format!("no profile {name:?}")).hint("`edbx profile list`"));
    }
    if doc.get("current").and_then(Item::as_str) == Some(name) {
        doc.remove("current");
    }
    write(&path, &doc)
}

fn check_name(name: &str) -> Outcome {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(()).ok_or_else(|| {
        Failure::usage(format!(
            "profile name {name:?} must be letters, digits, - or _"
        ))
    })
}
