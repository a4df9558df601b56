use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::{ENV_CACHE_DIR, ENV_DBX, SERVER_VERSION, TestkitError};

/// The folder `scripts/install-server.sh` installs the pinned server into:
/// `${EDBX_CACHE_DIR:-$HOME/.cache/edbx}/server-3.19.4` (the binary is `bin/dbx` inside it).
///
/// `None` when neither `EDBX_CACHE_DIR` nor `HOME` is set.
///
/// ```
/// if let Some(dir) = edbx_testkit::server_cache_dir() {
///     assert!(dir.ends_with("server-3.19.4"));
/// }
/// ```
pub fn server_cache_dir() -> Option<PathBuf> {
    let cache = match env::var_os(ENV_CACHE_DIR).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env::var_os("HOME").filter(|v| !v.is_empty())?)
            .join(".cache")
            .join("edbx"),
    };
    Some(cache.join(format!("server-{SERVER_VERSION}")))
}

/// Locates the `dbx` binary.
///
/// Looks, in order, at
/// 1. `$EDBX_DBX` (if set, it must name an existing file; there is no fallback),
/// 2. `${EDBX_CACHE_DIR:-$HOME/.cache/edbx}/server-3.19.4/bin/dbx` (where
///    `scripts/install-server.sh` puts it),
/// 3. `dbx` on `PATH`.
///
/// The version is *not* checked here; [`TestServer::start`](crate::TestServer::start) does that.
/// The error's `Display` says how to install the server.
///
/// ```no_run
/// let dbx = edbx_testkit::find_dbx().expect("EventDBX server binary");
/// println!("using {}", dbx.display());
/// ```
pub fn find_dbx() -> Result<PathBuf, TestkitError> {
    let mut searched = Vec::new();

    if let Some(explicit) = env::var_os(ENV_DBX).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(explicit);
        if is_executable_file(&path) {
            return Ok(path);
        }
        searched.push(format!(
            "{ENV_DBX}={} (no such executable file)",
            path.display()
        ));
        return Err(TestkitError::ServerNotFound {
            searched: searched.join(", "),
        });
    }
    searched.push(format!("{ENV_DBX} (not set)"));

    match server_cache_dir() {
        Some(dir) => {
            let path = dir.join("bin").join("dbx");
            if is_executable_file(&path) {
                return Ok(path);
            }
            searched.push(path.display().to_string());
        }
        None => searched.push(format!("{ENV_CACHE_DIR} and HOME are both unset")),
    }

    if let Some(path) = search_path(OsStr::new("dbx")) {
        return Ok(path);
    }
    searched.push("`dbx` on PATH".to_owned());

    Err(TestkitError::ServerNotFound {
        searched: searched.join(", "),
    })
}

fn search_path(name: &OsStr) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    let Ok(meta) = path.metadata() else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

/// Extracts the version from `dbx --version` output (`eventdbx version 3.19.4`).
pub(crate) fn parse_version(output: &str) -> Option<&str> {
    output
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("eventdbx version "))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_version_line() {
        assert_eq!(parse_version("eventdbx version 3.19.4\n"), Some("3.19.4"));
        assert_eq!(
            parse_version("noise\neventdbx version 3.20.0 \n"),
            Some("3.20.0")
        );
        assert_eq!(parse_version("dbx 3.19.4"), None);
        assert_eq!(parse_version(""), None);
    }
}
