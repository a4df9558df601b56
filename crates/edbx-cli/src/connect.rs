//! Connection settings, in order: flags, then the `EVENTDBX_*` variables (clap reads those into
//! the same fields), then the profile.

use std::io::BufRead;
use std::time::Duration;

use edbx::{Config, Setting};

use crate::cli::ConnArgs;
use crate::exit::{Failure, Outcome};
use crate::profile::{self, Profile};

/// The settings to connect with, and where the token came from (for `-v`; never the token).
pub struct Settings {
    pub config: Config,
    pub token_source: String,
    pub profile: Option<String>,
}

impl Settings {
    /// `host:port`.
    pub fn address(&self) -> String {
        let host = self.config.get_host();
        if host.contains(':') {
            format!("[{host}]:{}", self.config.get_port())
        } else {
            format!("{host}:{}", self.config.get_port())
        }
    }
}

fn env_flag(name: &str) -> Outcome<Option<bool>> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" | "" => Ok(Some(false)),
            other => Err(Failure::usage(format!(
                "{name} must be true or false, got {other:?}"
            ))),
        },
    }
}

fn read_token_file(path: &std::path::Path) -> Outcome<String> {
    let token = std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            Failure::usage(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?;
    warn_if_shared(path);
    Ok(token)
}

/// A token file that other users can read is a token they can use: say so (the file is still
/// used, as ssh would not, because refusing would break set-ups that work today).
fn warn_if_shared(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o044 != 0 {
                eprintln!(
                    "edbx: warning: the token file {} can be read by other users (mode {mode:03o}); \
                     `chmod 600 {}` keeps the token yours",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Reads the token from stdin's first line.
pub fn token_from_stdin() -> Outcome<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let token = line.trim().to_owned();
    if token.is_empty() {
        return Err(Failure::usage("--token-stdin: stdin's first line is empty"));
    }
    Ok(token)
}

/// The token from the flags alone (for `profile add`): `(token, token file)`.
pub fn token_from_flags(conn: &ConnArgs) -> Outcome<(Option<String>, Option<std::path::PathBuf>)> {
    if let Some(file) = &conn.token_file {
        read_token_file(file)?;
        return Ok((None, Some(file.clone())));
    }
    if conn.token_stdin {
        return Ok((Some(token_from_stdin()?), None));
    }
    Ok((conn.token.clone(), None))
}

/// Resolves the settings of one run; `audit` runs without a token (`token_required` false).
pub fn settings(conn: &ConnArgs, token_required: bool) -> Outcome<Settings> {
    let loaded = profile::load(conn.profile.as_deref())?;
    let (profile_name, profile) = match loaded {
        Some((name, profile)) => (Some(name), profile),
        None => (None, Profile::default()),
    };
    // The three token flags exclude one another (clap enforces it); any of them beats
    // EVENTDBX_TOKEN, which beats the profile.
    let env_token = std::env::var("EVENTDBX_TOKEN").ok();
    let (token, token_source) = if let Some(token) = &conn.token {
        (Some(token.trim().to_owned()), "--token".to_owned())
    } else if let Some(file) = &conn.token_file {
        (
            Some(read_token_file(file)?),
            format!("the file {}", file.display()),
        )
    } else if conn.token_stdin {
        (Some(token_from_stdin()?), "stdin".to_owned())
    } else if let Some(token) = env_token {
        (Some(token.trim().to_owned()), "EVENTDBX_TOKEN".to_owned())
    } else if let Some(file) = &profile.token_file {
        (
            Some(read_token_file(file)?),
            format!("the file {} (profile)", file.display()),
        )
    } else if let Some(token) = &profile.token {
        (Some(token.clone()), "the profile".to_owned())
    } else if token_required {
        return Err(Failure::usage("no token").hint(
            "pass --token-file PATH or --token-stdin, set EVENTDBX_TOKEN, or store one with \
             `edbx profile add NAME --token-file PATH`",
        ));
    } else {
        (None, "nowhere (no token given)".to_owned())
    };

    let mut config = Config::new();
    if let Some(token) = token {
        if token.is_empty() {
            return Err(Failure::usage(format!(
                "the token from {token_source} is empty"
            )));
        }
        config = config.token(token);
    }
    if let Some(host) = conn.host.clone().or(profile.host) {
        config = config.host(host);
    }
    if let Some(port) = conn.port.or(profile.port) {
        config = config.port(port);
    }
    if conn.tenant.as_deref() == Some("") {
        // An empty variable would otherwise override the profile's tenant without a word.
        return Err(Failure::usage(
            "the tenant is empty (--tenant or EVENTDBX_TENANT_ID): give one, or leave both \
             unset for the profile's tenant or the server's default",
        ));
    }
    if let Some(tenant) = conn.tenant.clone().or(profile.tenant) {
        config = config.tenant_id(tenant);
    }
    // The last of --noise/--no-noise given wins (clap keeps only it); then the variable, then
    // the profile.
    let flag = if conn.no_noise {
        Some(true)
    } else if conn.noise {
        Some(false)
    } else {
        None
    };
    let no_noise = match flag {
        Some(no_noise) => no_noise,
        None => env_flag("EVENTDBX_NO_NOISE")?
            .or(profile.no_noise)
            .unwrap_or(false),
    };
    config = config.noise(!no_noise);
    let timeout_source = if conn.timeout.is_some() {
        "--timeout"
    } else {
        "the profile's timeout"
    };
    if let Some(seconds) = conn.timeout.or(profile.timeout) {
        if seconds.is_nan() || seconds <= 0.0 {
            return Err(Failure::usage(format!(
                "{timeout_source} must be a positive number of seconds, got {seconds}"
            )));
        }
        // Past what a Duration holds is past the engine's limit too.
        let timeout = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
        config = config
            .request_timeout(timeout)
            .connect_timeout(timeout)
            .handshake_timeout(timeout);
    }
    // The engine owns the limits; this says which flag broke one, before anything connects.
    // `audit` runs without a token, so its absence is not the engine's to judge here.
    let checked = if config.get_token().is_none() && !token_required {
        config.clone().token("-")
    } else {
        config.clone()
    };
    checked.validate().map_err(|err| {
        let flag = match err.setting() {
            Some(Setting::Host) => "--host",
            Some(Setting::Token) => "the token",
            Some(Setting::ConnectTimeout | Setting::HandshakeTimeout | Setting::RequestTimeout) => {
                timeout_source
            }
            // Settings the command line does not offer keep the engine's own words.
            _ => return Failure::from(err),
        };
        Failure::usage(format!(
            "{flag} {}",
            err.requirement().unwrap_or("is not valid")
        ))
    })?;
    Ok(Settings {
        config,
        token_source,
        profile: profile_name,
    })
}
