//! The UI's HTTP surface against a real EventDBX server, without a browser: who is let in
//! (one-time token, cookie, Host), the headers of every response, the write checks (read-only,
//! CSRF, Origin, content type), and the reads behind the pages (paging without skipping rows,
//! the state at a version, the Merkle check, live events).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use edbx::{Client, Config};
use edbx_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A real server, a client for it, and a UI serving that client.
struct Setup {
    server: TestServer,
    client: Client,
    addr: SocketAddr,
    token: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A real server and a client connected to it.
async fn server_and_client() -> (TestServer, Client) {
    let server = TestServer::start(ServerOptions::default())
        .unwrap_or_else(|e| panic!("cannot start the EventDBX server: {e}"));
    let client = Client::connect(
        Config::new()
            .host(server.host())
            .port(server.port())
            .token(server.token())
            .tenant_id(server.tenant())
            .request_timeout(Duration::from_secs(30)),
    )
    .await
    .expect("connect to the test server");
    (server, client)
}

async fn setup(allow_writes: bool) -> Setup {
    let (server, client) = server_and_client().await;
    let ui = edbx_ui::Ui::bind(
        client.clone(),
        edbx_ui::Options::default()
            .allow_writes(allow_writes)
            .poll_interval(Duration::from_millis(100)),
    )
    .await
    .expect("bind the UI");
    let addr = ui.local_addr();
    assert!(addr.ip().is_loopback());
    let token = ui
        .login_url()
        .split_once("?token=")
        .expect("the login URL carries a token")
        .1
        .to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ui.serve(async {
        let _ = stopped.await;
    }));
    Setup {
        server,
        client,
        addr,
        token,
        _stop: stop,
    }
}

/// One HTTP/1.1 response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request (`Connection: close`) and reads the whole response. `host` defaults to
/// the UI's own address.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect to the UI");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    parse(&String::from_utf8_lossy(&raw))
}

fn parse(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

impl Setup {
    /// Logs in with the one-time token: the cookie header to send from then on.
    async fn log_in(&self) -> String {
        let reply = send(
            self.addr,
            "GET",
            &format!("/?token={}", self.token),
            &[],
            "",
        )
        .await;
        assert_eq!(reply.status, 303, "{reply:?}");
        let cookie = reply.header("set-cookie");
        cookie.split(';').next().expect("name=value").to_owned()
    }

    async fn get(&self, cookie: &str, path: &str) -> Reply {
        send(self.addr, "GET", path, &[("Cookie", cookie)], "").await
    }
}

fn assert_secure_headers(reply: &Reply) {
    let csp = reply.header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{reply:?}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    assert_eq!(reply.header("referrer-policy"), "no-referrer");
    assert_eq!(reply.header("x-frame-options"), "DENY");
    assert_eq!(reply.header("cache-control"), "no-store");
}

#[tokio::test]
async fn without_the_login_token_or_its_cookie_every_request_is_refused() {
    let ui = setup(false).await;
    for path in [
        "/",
        "/api/types",
        "/api/session",
        "/assets/app.js",
        "/api/live",
        "/nope",
    ] {
        let reply = send(ui.addr, "GET", path, &[], "").await;
        assert_eq!(reply.status, 401, "{path}: {reply:?}");
        assert_secure_headers(&reply);
        assert!(reply.body.contains("Not logged in"), "{}", reply.body);
    }
    // A made-up cookie is no session.
    let port = ui.addr.port();
    let forged = format!("edbx_ui_{port}={}", "0".repeat(64));
    assert_eq!(ui.get(&forged, "/api/session").await.status, 401);
    // A wrong token neither logs in nor uses up the right one.
    let wrong = send(ui.addr, "GET", "/?token=guess", &[], "").await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.header("set-cookie").is_empty());
    ui.log_in().await;
}

#[tokio::test]
async fn the_token_logs_one_browser_in_once_with_a_strict_cookie() {
    let ui = setup(false).await;
    let reply = send(ui.addr, "GET", &format!("/?token={}", ui.token), &[], "").await;
    assert_eq!(reply.status, 303);
    assert_eq!(
        reply.header("location"),
        "/",
        "the token leaves the address"
    );
    let cookie = reply.header("set-cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(
        cookie.starts_with(&format!("edbx_ui_{}=", ui.addr.port())),
        "{cookie}"
    );
    assert!(!cookie.contains(&ui.token), "the session is not the token");
    assert_secure_headers(&reply);
    let cookie = cookie.split(';').next().unwrap().to_owned();

    let page = ui.get(&cookie, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.body.contains("/assets/app.js"));
    assert!(!page.body.contains("<script>"), "no inline script");
    assert_secure_headers(&page);
    let script = ui.get(&cookie, "/assets/app.js").await;
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").starts_with("text/javascript"));
    assert_secure_headers(&script);

    // Used once: another browser cannot log in with the same link.
    let again = send(ui.addr, "GET", &format!("/?token={}", ui.token), &[], "").await;
    assert_eq!(again.status, 403, "{again:?}");
    assert!(again.body.contains("used already"), "{}", again.body);
    // The browser that has the cookie is sent on without the token.
    let reopened = send(
        ui.addr,
        "GET",
        &format!("/?token={}", ui.token),
        &[("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(reopened.status, 303);
}

#[tokio::test]
async fn a_foreign_host_is_refused_even_with_the_token_or_the_cookie() {
    let ui = setup(false).await;
    let port = ui.addr.port();
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
    ] {
        let reply = send(
            ui.addr,
            "GET",
            &format!("/?token={}", ui.token),
            &[("Host", &host)],
            "",
        )
        .await;
        assert_eq!(reply.status, 403, "{host}: {reply:?}");
        assert!(reply.body.contains("DNS rebinding"), "{}", reply.body);
        assert_secure_headers(&reply);
    }
    // The refusals did not use the token up; the cookie is refused under a foreign name too.
    let cookie = ui.log_in().await;
    let rebound = send(
        ui.addr,
        "GET",
        "/api/session",
        &[
            ("Host", &format!("evil.example:{port}")),
            ("Cookie", &cookie),
        ],
        "",
    )
    .await;
    assert_eq!(rebound.status, 403);
    let local = send(
        ui.addr,
        "GET",
        "/api/session",
        &[("Host", &format!("localhost:{port}")), ("Cookie", &cookie)],
        "",
    )
    .await;
    assert_eq!(local.status, 200);
}

#[tokio::test]
async fn the_eventdbx_token_never_reaches_the_browser() {
    let ui = setup(true).await;
    let cookie = ui.log_in().await;
    let secret = ui.server.token();
    for path in [
        "/",
        "/assets/app.js",
        "/api/session",
        "/api/types",
        "/api/aggregate?type=x&id=nope",
    ] {
        let reply = ui.get(&cookie, path).await;
        assert!(!reply.body.contains(secret), "{path} shows the token");
        assert!(
            !reply.headers.values().any(|v| v.contains(secret)),
            "{path}"
        );
    }
    let session = ui.get(&cookie, "/api/session").await.json();
    assert_eq!(session["allow_writes"], true);
    assert_eq!(session["server"], format!("{}", ui.server.addr()));
}

#[tokio::test]
async fn writes_are_refused_when_read_only() {
    let ui = setup(false).await;
    let cookie = ui.log_in().await;
    let origin = format!("http://{}", ui.addr);
    let session = ui.get(&cookie, "/api/session").await.json();
    assert_eq!(session["allow_writes"], false);
    assert!(
        session["csrf"].is_null(),
        "no CSRF token when nothing can be written"
    );
    let body = json!({"type": "orders", "id": "o1", "event_type": "placed", "payload": {"n": 1}});
    let reply = send(
        ui.addr,
        "POST",
        "/api/write/apply",
        &[
            ("Cookie", &cookie),
            ("Origin", &origin),
            ("Content-Type", "application/json"),
            ("X-Edbx-Csrf", "anything"),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(reply.body.contains("read-only"), "{}", reply.body);
    assert!(
        ui.client.get("orders", "o1").await.unwrap().is_none(),
        "nothing written"
    );
}

#[tokio::test]
async fn writes_need_the_csrf_token_this_origin_and_a_json_body() {
    let ui = setup(true).await;
    let cookie = ui.log_in().await;
    let csrf = ui.get(&cookie, "/api/session").await.json()["csrf"]
        .as_str()
        .expect("a CSRF token when writes are on")
        .to_owned();
    let origin = format!("http://{}", ui.addr);
    let body = json!({"type": "orders", "id": "o1", "event_type": "order.placed", "payload": {"total": 5}, "note": "from the UI"}).to_string();
    let attempt = |headers: Vec<(&'static str, String)>, body: String| {
        let cookie = cookie.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("Cookie", cookie.as_str())];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            send(ui.addr, "POST", "/api/write/apply", &all, &body).await
        }
    };
    let json_type = ("Content-Type", "application/json".to_owned());
    let no_csrf = attempt(
        vec![("Origin", origin.clone()), json_type.clone()],
        body.clone(),
    )
    .await;
    assert_eq!(no_csrf.status, 403, "{no_csrf:?}");
    assert!(no_csrf.body.contains("CSRF"));
    let wrong_csrf = attempt(
        vec![
            ("Origin", origin.clone()),
            json_type.clone(),
            ("X-Edbx-Csrf", "0".repeat(64)),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(wrong_csrf.status, 403);
    let foreign = attempt(
        vec![
            ("Origin", "http://evil.example".to_owned()),
            json_type.clone(),
            ("X-Edbx-Csrf", csrf.clone()),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(foreign.status, 403, "{foreign:?}");
    assert!(foreign.body.contains("Origin"));
    let no_origin = attempt(
        vec![json_type.clone(), ("X-Edbx-Csrf", csrf.clone())],
        body.clone(),
    )
    .await;
    assert_eq!(no_origin.status, 403);
    let form = attempt(
        vec![
            ("Origin", origin.clone()),
            ("Content-Type", "text/plain".to_owned()),
            ("X-Edbx-Csrf", csrf.clone()),
        ],
        body.clone(),
    )
    .await;
    assert_eq!(form.status, 415);
    assert!(
        ui.client.get("orders", "o1").await.unwrap().is_none(),
        "nothing written yet"
    );

    let done = attempt(
        vec![
            ("Origin", origin.clone()),
            json_type.clone(),
            ("X-Edbx-Csrf", csrf.clone()),
        ],
        body,
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.json()["done"], true);
    let written = ui
        .client
        .get("orders", "o1")
        .await
        .unwrap()
        .expect("written");
    assert_eq!(written.version, 1);
    // Bad input is refused by the engine before sending, and said so.
    let bad = attempt(
        vec![("Origin", origin), json_type, ("X-Edbx-Csrf", csrf)],
        json!({"type": "orders", "id": "o1", "event_type": "Bad Type", "payload": {}}).to_string(),
    )
    .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.json()["kind"], "invalid_input");
    assert_eq!(
        ui.client
            .get("orders", "o1")
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn aggregate_pages_follow_the_engines_cursors_without_skipping_rows() {
    let ui = setup(false).await;
    // Rows of ~600 bytes: the server cuts its pages (~7.5 KiB) well before 50 rows.
    let filler = "x".repeat(500);
    for i in 0..40 {
        ui.client
            .create(
                "orders",
                &format!("o{i:02}"),
                "placed",
                &json!({"pad": filler, "i": i}),
            )
            .await
            .unwrap();
    }
    ui.client
        .create("other", "z1", "made", &json!({}))
        .await
        .unwrap();
    let cookie = ui.log_in().await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/aggregates?type=orders&take=17".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page = ui.get(&cookie, &path).await.json();
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= 17);
        seen.extend(
            items
                .iter()
                .map(|a| a["aggregate_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), 17, "a page short of its size ends the listing");
                cursor = Some(next.to_owned());
            }
            None => break,
        }
    }
    let expected: Vec<String> = (0..40).map(|i| format!("o{i:02}")).collect();
    assert_eq!(seen, expected);

    // A filter the server refuses comes back as a clear error, its text quoted.
    let bad = ui
        .get(
            &cookie,
            "/api/aggregates?type=orders&filter=%3Cb%3E%20%3E%3D%201",
        )
        .await;
    assert_eq!(bad.status, 400, "{bad:?}");
    assert_eq!(bad.json()["kind"], "invalid_input");
    // A sort the server cannot page: one page, which says whether it is complete.
    let sorted = ui
        .get(
            &cookie,
            "/api/aggregates?type=orders&sort=aggregate_id:desc&take=500",
        )
        .await
        .json();
    assert_eq!(sorted["pageable"], false);
    let rows = sorted["items"].as_array().unwrap().len();
    assert_eq!(sorted["complete"], rows == 40, "{rows} rows");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_state_at_each_version_is_the_fold_and_its_changes_are_named() {
    let ui = setup(false).await;
    let c = &ui.client;
    c.create(
        "orders",
        "o1",
        "placed",
        &json!({"total": 10, "status": "new"}),
    )
    .await
    .unwrap();
    c.apply(
        "orders",
        "o1",
        "order.paid",
        &json!({"status": "paid", "paid_at": null}),
    )
    .await
    .unwrap();
    c.apply("orders", "o1", "noted", &json!({"status": "paid"}))
        .await
        .unwrap();
    let cookie = ui.log_in().await;
    let at = |v: u64| {
        let cookie = cookie.clone();
        let addr = ui.addr;
        async move {
            send(
                addr,
                "GET",
                &format!("/api/state?type=orders&id=o1&version={v}"),
                &[("Cookie", &cookie)],
                "",
            )
            .await
            .json()
        }
    };
    let v1 = at(1).await;
    assert_eq!(v1["state"], json!({"total": "10", "status": "new"}));
    let v2 = at(2).await;
    assert_eq!(v2["event"]["event_type_raw"], "order.paid");
    assert_eq!(
        v2["changes"],
        json!([
            {"key": "paid_at", "kind": "added", "before": null, "after": ""},
            {"key": "status", "kind": "changed", "before": "new", "after": "paid"},
        ])
    );
    let v3 = at(3).await;
    assert_eq!(v3["changes"][0]["kind"], "unchanged");
    let latest = ui.get(&cookie, "/api/state?type=orders&id=o1").await.json();
    let current = c.get("orders", "o1").await.unwrap().unwrap();
    assert_eq!(latest["version"], current.version);
    assert_eq!(
        serde_json::from_value::<BTreeMap<String, String>>(latest["state"].clone()).unwrap(),
        current.state
    );
    let missing = ui
        .get(&cookie, "/api/state?type=orders&id=o1&version=9")
        .await;
    assert_eq!(missing.status, 404);

    // The Merkle check, with its outcome; an archived aggregate cannot be checked.
    let check = ui
        .get(&cookie, "/api/verify?type=orders&id=o1")
        .await
        .json();
    assert_eq!(check["outcome"], "intact", "{check}");
    c.archive("orders", "o1").await.unwrap();
    let archived = ui
        .get(&cookie, "/api/verify?type=orders&id=o1")
        .await
        .json();
    assert_eq!(archived["outcome"], "unverifiable");
    assert_eq!(archived["reason"], "archived");
}

/// What `/api/state` should say at `version`, from the engine's own fold of `events`.
fn expected_state(events: &[edbx::Event], version: u64) -> Value {
    let fold = |upto: u64| {
        let mut state = BTreeMap::new();
        for event in &events[..upto as usize] {
            event.apply_to(&mut state);
        }
        state
    };
    let (before, after) = (fold(version - 1), fold(version));
    let mut written = BTreeMap::new();
    events[version as usize - 1].apply_to(&mut written);
    let changes: Vec<Value> = written
        .keys()
        .map(|key| {
            let kind = match (before.get(key), after.get(key)) {
                (None, _) => "added",
                (Some(b), Some(a)) if a == b => "unchanged",
                _ => "changed",
            };
            json!({"key": key, "kind": kind, "before": before.get(key), "after": after.get(key)})
        })
        .collect();
    json!({"version": version, "state": after, "changes": changes})
}

#[tokio::test]
async fn a_long_history_shows_the_same_state_from_its_end_and_from_its_start() {
    let ui = setup(false).await;
    // 300 events, each writing keys written a few events before: the latest version is shown
    // from the end of the history; the other versions fold it from the start, in slices.
    ui.client
        .create("ledger", "long", "opened", &json!({"n": 0}))
        .await
        .unwrap();
    for i in 1..300 {
        let payload = json!({format!("k{}", i % 7): i, "last": i, "pad": "p".repeat(i % 50)});
        ui.client
            .apply("ledger", "long", "moved", &payload)
            .await
            .unwrap();
    }
    let cookie = ui.log_in().await;
    let at = |query: String| {
        let path = format!("/api/state?type=ledger&id=long{query}");
        let cookie = cookie.clone();
        let addr = ui.addr;
        async move {
            let mut shown = send(addr, "GET", &path, &[("Cookie", &cookie)], "")
                .await
                .json();
            shown.as_object_mut().unwrap().remove("event");
            shown
        }
    };
    let events = |client: Client| async move {
        client
            .events("ledger", "long")
            .stream()
            .collect_all()
            .await
            .unwrap()
    };
    let history = events(ui.client.clone()).await;
    assert_eq!(at(String::new()).await, expected_state(&history, 300));
    let current = ui.client.get("ledger", "long").await.unwrap().unwrap();
    assert_eq!(json!(current.state), expected_state(&history, 300)["state"]);

    // A key written for the first time, and nothing before it to tell: the whole history is
    // read (the end alone cannot prove the key new).
    ui.client
        .apply(
            "ledger",
            "long",
            "noted",
            &json!({"fresh": true, "last": 300}),
        )
        .await
        .unwrap();
    let history = events(ui.client.clone()).await;
    assert_eq!(at(String::new()).await, expected_state(&history, 301));
    assert_eq!(
        at("&version=301".into()).await,
        expected_state(&history, 301)
    );
    for v in [1u64, 64, 65, 137, 299, 300] {
        assert_eq!(
            at(format!("&version={v}")).await,
            expected_state(&history, v),
            "at version {v}"
        );
    }
}

/// Reads a server-sent-event stream until `needle` has arrived (failing after 60 s).
async fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str) {
    let wait = async {
        let mut buffer = [0u8; 4096];
        while !seen.contains(needle) {
            let n = stream
                .read(&mut buffer)
                .await
                .expect("read the event stream");
            assert!(n > 0, "the event stream ended; got {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("{needle:?} did not arrive"));
}

/// Opens the live-event stream (`query` narrows it) and reads it until `ready` arrived.
async fn listen(addr: SocketAddr, cookie: &str, query: &str, ready: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /api/live{query} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = String::new();
    read_until(&mut stream, &mut seen, ready).await;
    (stream, seen)
}

#[tokio::test]
async fn new_events_arrive_as_server_sent_events_once_each() {
    let ui = setup(false).await;
    ui.client
        .create("orders", "o1", "placed", &json!({"n": 0}))
        .await
        .unwrap();
    let cookie = ui.log_in().await;
    let (mut stream, mut seen) = listen(ui.addr, &cookie, "?type=orders", "event: ready").await;
    assert!(seen.contains("text/event-stream"), "{seen}");
    // Written after the source took its starting point: each arrives, once.
    ui.client
        .apply("orders", "o1", "order.paid", &json!({"n": 1}))
        .await
        .unwrap();
    ui.client
        .apply("other", "x1", "made", &json!({"n": 1}))
        .await
        .unwrap();
    ui.client
        .create("orders", "o2", "placed", &json!({"n": 2}))
        .await
        .unwrap();
    // Both, in whichever order: the subscription orders each aggregate's events, not the
    // events of different aggregates (it hands them on oldest change first, usually the
    // order they were written in; the engine's tests hold it to that for this sequence).
    read_until(&mut stream, &mut seen, "\"aggregate_id\":\"o2\"").await;
    read_until(&mut stream, &mut seen, "\"event_type_raw\":\"order.paid\"").await;
    assert_eq!(seen.matches("event: event").count(), 2, "{seen}");
    assert!(!seen.contains("\"x1\""), "another type's event: {seen}");
    assert!(!seen.contains("\"n\":0"), "an event from before: {seen}");
}

#[tokio::test]
async fn live_events_go_on_after_the_server_restarts() {
    let mut ui = setup(false).await;
    ui.client
        .create("orders", "o1", "placed", &json!({"n": 0}))
        .await
        .unwrap();
    let cookie = ui.log_in().await;
    let (mut stream, mut seen) = listen(ui.addr, &cookie, "", "event: ready").await;
    // SIGKILL: after trying for a while, the subscription gives up and the pages are told;
    // restarted on the same data, ports and keys, it goes on from where it stood, and the
    // pages' stream never closed.
    ui.server.kill().expect("kill the server");
    read_until(&mut stream, &mut seen, "event: status").await;
    assert!(seen.contains("live events paused"), "{seen}");
    ui.server.restart().expect("restart the server");
    // A writer of its own: the UI's client may be backing off its connects after the outage.
    let writer = Client::connect(ui.client.config().clone())
        .await
        .expect("connect after the restart");
    writer
        .apply("orders", "o1", "order.paid", &json!({"n": 1}))
        .await
        .expect("write after the restart");
    read_until(&mut stream, &mut seen, "\"event_type_raw\":\"order.paid\"").await;
    assert_eq!(seen.matches("event: event").count(), 1, "{seen}");
}

/// A source that replays one aggregate's events once, after its starting point: any source
/// can feed the pages in place of the engine's subscription.
struct Replay {
    client: Client,
    calls: u32,
}

impl edbx_ui::LiveSource for Replay {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn next_batch(
        &mut self,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = edbx::Result<edbx_ui::LiveBatch>> + Send + '_>,
    > {
        self.calls += 1;
        let calls = self.calls;
        let client = self.client.clone();
        Box::pin(async move {
            match calls {
                1 => Ok(edbx_ui::LiveBatch::default()),
                2 => Ok(edbx_ui::LiveBatch::of(
                    client.events("orders", "o1").stream().collect_all().await?,
                )),
                _ => std::future::pending().await,
            }
        })
    }
}

#[tokio::test]
async fn another_live_source_can_take_the_place_of_the_subscription() {
    let (_server, client) = server_and_client().await;
    client
        .create("orders", "o1", "placed", &json!({"n": 1}))
        .await
        .unwrap();
    let factory: edbx_ui::LiveSourceFactory =
        std::sync::Arc::new(|client| Box::new(Replay { client, calls: 0 }));
    let ui = edbx_ui::Ui::bind(
        client.clone(),
        edbx_ui::Options::default().live_source(factory),
    )
    .await
    .unwrap();
    let addr = ui.local_addr();
    let token = ui.login_url().split_once("?token=").unwrap().1.to_owned();
    tokio::spawn(ui.serve(std::future::pending()));
    let login = send(addr, "GET", &format!("/?token={token}"), &[], "").await;
    let cookie = login
        .header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session = send(addr, "GET", "/api/session", &[("Cookie", &cookie)], "")
        .await
        .json();
    assert_eq!(session["live_source"], "replay");
    let (mut stream, mut seen) = listen(addr, &cookie, "", "data: replay").await;
    read_until(&mut stream, &mut seen, "\"aggregate_id\":\"o1\"").await;
    assert!(seen.contains("event: event"), "{seen}");
}

#[tokio::test]
async fn types_are_counted_and_activity_is_charted() {
    let ui = setup(false).await;
    for i in 0..5 {
        ui.client
            .create("orders", &format!("o{i}"), "placed", &json!({}))
            .await
            .unwrap();
    }
    ui.client
        .apply("orders", "o1", "paid", &json!({}))
        .await
        .unwrap();
    ui.client
        .create("people", "p1", "joined", &json!({}))
        .await
        .unwrap();
    ui.client
        .create("people", "p2", "joined", &json!({}))
        .await
        .unwrap();
    ui.client.archive("people", "p2").await.unwrap();
    let cookie = ui.log_in().await;
    let count = async {
        loop {
            let reply = ui.get(&cookie, "/api/types").await.json();
            if reply["done"] == true {
                return reply;
            }
            tokio::task::yield_now().await;
        }
    };
    let counts = tokio::time::timeout(Duration::from_secs(60), count)
        .await
        .expect("the count ends");
    assert_eq!(counts["error"], Value::Null);
    assert_eq!(
        counts["types"],
        json!([
            {"type": "orders", "active": 5, "archived": 0, "final": true},
            {"type": "people", "active": 1, "archived": 1, "final": true},
        ])
    );
    let activity = ui.get(&cookie, "/api/activity?minutes=60").await.json();
    // The archived aggregate's event is not counted: the server lists none of its events.
    assert_eq!(activity["total"], 7, "{activity}");
    assert_eq!(activity["buckets"].as_array().unwrap().len(), 60);
    assert_eq!(activity["top"][0]["aggregate_id"], "o1");
    assert_eq!(activity["top"][0]["events"], 2);
    let orders = ui.get(&cookie, "/api/activity?type=orders").await.json();
    assert_eq!(orders["total"], 6, "{orders}");
}
