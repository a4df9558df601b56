//! Who may talk to the UI: the one-time login token, session cookies, the `Host` check (DNS
//! rebinding), CSRF tokens and `Origin` checks for writes, and the headers every response
//! carries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The Content-Security-Policy of every response: scripts, styles and connections from this
/// origin only (no inline script, no `eval`), no plugins, no framing, no `<base>`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                       object-src 'none'; base-uri 'none'; form-action 'self'; \
                       frame-ancestors 'none'";

/// The header that carries a session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-edbx-csrf";

/// Random secrets: the login token, sessions, CSRF tokens (32 bytes from the OS, as hex).
pub(crate) fn secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The login token (usable once), the sessions it opened and their CSRF tokens, and the
/// `Host` values this server answers to.
pub(crate) struct Security {
    login: Mutex<Option<String>>,
    /// Session id → CSRF token.
    sessions: Mutex<HashMap<String, String>>,
    cookie_name: String,
    hosts: Vec<String>,
}

impl Security {
    /// For a server listening on `addr`, with the one-time `login` token.
    pub(crate) fn new(addr: SocketAddr, login: String) -> Self {
        let port = addr.port();
        let mut hosts = vec![format!("localhost:{port}")];
        hosts.push(match addr {
            SocketAddr::V4(v4) => format!("{}:{port}", v4.ip()),
            SocketAddr::V6(v6) => format!("[{}]:{port}", v6.ip()),
        });
        Self {
            login: Mutex::new(Some(login)),
            sessions: Mutex::new(HashMap::new()),
            // Cookies are not scoped by port: each UI names its own.
            cookie_name: format!("edbx_ui_{port}"),
            hosts,
        }
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        self.hosts
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(host))
    }

    /// The session id of a request, if its cookie names a live session.
    fn session(&self, headers: &HeaderMap) -> Option<String> {
        let sessions = self.sessions.lock().expect("sessions lock");
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.cookie_name)
            .find_map(|(_, value)| sessions.keys().find(|id| same_secret(id, value)).cloned())
    }

    /// Trades the login token for a new session (once): its id.
    fn log_in(&self, offered: &str) -> std::io::Result<Option<String>> {
        let mut login = self.login.lock().expect("login lock");
        match login.as_deref() {
            Some(token) if same_secret(token, offered) => {
                *login = None;
                let id = secret()?;
                self.sessions
                    .lock()
                    .expect("sessions lock")
                    .insert(id.clone(), secret()?);
                Ok(Some(id))
            }
            _ => Ok(None),
        }
    }

    /// The CSRF token of a session.
    pub(crate) fn csrf(&self, session: &str) -> Option<String> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(session)
            .cloned()
    }
}

/// The session a request was admitted with (an extension set by [`guard`]).
#[derive(Clone)]
pub(crate) struct Session(pub(crate) String);

/// Every request passes here: the `Host` check, then the login token or the session cookie;
/// writes also need the CSRF token and a same-origin `Origin`. Every response gets the
/// security headers.
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut response = match admit(&state, &mut request) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal,
    };
    secure_headers(response.headers_mut());
    response
}

fn admit(state: &AppState, request: &mut Request) -> Result<(), Response> {
    let security = &state.security;
    if !security.host_allowed(request.headers()) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "This server answers only to its loopback address (the Host header names another \
             host: DNS rebinding is refused). Open the link edbx ui printed.",
        ));
    }
    if let Some(offered) = login_token(request.uri().query()) {
        if security.session(request.headers()).is_some() {
            // Already logged in (the link opened again): drop the token from the address.
            return Err(see_other(request.uri().path(), None));
        }
        return match security.log_in(&offered) {
            Ok(Some(session)) => {
                let cookie = format!(
                    "{}={session}; HttpOnly; SameSite=Strict; Path=/",
                    security.cookie_name
                );
                Err(see_other(request.uri().path(), Some(cookie)))
            }
            Ok(None) => Err(refuse(
                StatusCode::FORBIDDEN,
                "This login link was used already or is wrong: each link logs in one browser, \
                 once. Restart edbx ui for a new one.",
            )),
            Err(e) => Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot make a session: {e}"),
            )),
        };
    }
    let Some(session) = security.session(request.headers()) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "Not logged in. Open the link edbx ui printed when it started (it logs one browser \
             in, once).",
        ));
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        check_write(state, request, &session)?;
    }
    request.extensions_mut().insert(Session(session));
    Ok(())
}

/// A write must come from this origin's own page: the session's CSRF token in its header, a
/// matching `Origin`, and a JSON body (which plain HTML forms cannot send).
fn check_write(state: &AppState, request: &Request, session: &str) -> Result<(), Response> {
    if !state.allow_writes {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "This UI is read-only: start it with `edbx ui --allow-writes` to write.",
        ));
    }
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_some_and(|origin| origin.eq_ignore_ascii_case(&format!("http://{host}")));
    if !origin_ok {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Write refused: it did not come from this UI's own page (Origin).",
        ));
    }
    let expected = state.security.csrf(session).unwrap_or_default();
    let csrf_ok = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|offered| !expected.is_empty() && same_secret(offered, &expected));
    if !csrf_ok {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Write refused: missing or wrong CSRF token. Reload the page and try again.",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Write refused: the body must be application/json.",
        ));
    }
    Ok(())
}

/// `token=…` from a query string.
fn login_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value.to_owned())
}

fn see_other(path: &str, cookie: Option<String>) -> Response {
    let location = if path.starts_with('/') { path } else { "/" };
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// A refusal: plain text (nothing from the request is echoed into it).
fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("edbx ui: {message}\n"),
    )
        .into_response()
}

/// The headers of every response.
fn secure_headers(headers: &mut HeaderMap) {
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, "content-security-policy", CSP);
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "x-frame-options", "DENY");
    set(headers, "cross-origin-opener-policy", "same-origin");
    set(headers, "cross-origin-resource-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        let a = secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, secret().unwrap());
    }

    #[test]
    fn the_login_token_works_once() {
        let security = Security::new("127.0.0.1:4000".parse().unwrap(), "t0k".into());
        assert!(security.log_in("wrong").unwrap().is_none());
        let session = security.log_in("t0k").unwrap().expect("first use");
        assert!(security.log_in("t0k").unwrap().is_none(), "second use");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; edbx_ui_4000={session}")).unwrap(),
        );
        assert_eq!(security.session(&headers), Some(session.clone()));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("edbx_ui_4001={session}")).unwrap(),
        );
        assert_eq!(security.session(&headers), None, "another port's cookie");
    }

    #[test]
    fn only_loopback_hosts_of_this_port_are_answered() {
        let security = Security::new("127.0.0.1:4000".parse().unwrap(), "t".into());
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            security.host_allowed(&headers)
        };
        assert!(host("127.0.0.1:4000"));
        assert!(host("localhost:4000"));
        assert!(!host("127.0.0.1:4001"));
        assert!(!host("evil.example:4000"));
        assert!(!host("127.0.0.1"));
        assert!(!security.host_allowed(&HeaderMap::new()));
        assert_eq!(login_token(Some("a=1&token=xyz")), Some("xyz".into()));
        assert_eq!(login_token(None), None);
    }
}
