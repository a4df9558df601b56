//! `edbx ui`: listens on loopback only, prints its one-time login link alone on stdout, serves
//! the pages behind it, and stops on Ctrl-C (exit 130). The pages themselves are tested in
//! crates/edbx-ui (HTTP) and in a real browser (crates/edbx-ui/tests/browser).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{Env, finish, signal};

/// One `GET` with a cookie; the response's head and body.
fn get(addr: &str, path: &str, cookie: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to edbx ui");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn ui_prints_a_login_link_serves_behind_it_and_stops_on_ctrl_c() {
    let env = Env::start();
    let mut child = env.spawn(&["ui"]);
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut link = String::new();
    stdout.read_line(&mut link).expect("the login link");
    let link = link.trim().to_owned();
    let rest = link
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("a loopback link: {link}"));
    let (port, token) = rest.split_once("/?token=").expect("a token in the link");
    assert_eq!(token.len(), 64, "{link}");
    assert!(
        !link.contains(env.server.token()),
        "the EventDBX token is not in the link"
    );
    let addr = format!("127.0.0.1:{port}");

    let refused = get(&addr, "/api/session", "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let login = get(&addr, &format!("/?token={token}"), "");
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let session = get(&addr, "/api/session", &cookie);
    assert!(session.starts_with("HTTP/1.1 200"), "{session}");
    assert!(session.contains("\"allow_writes\":false"), "{session}");

    signal(&child, libc::SIGINT);
    child.stdout = Some(stdout.into_inner());
    let run = finish(child, Duration::from_secs(30), "ui");
    run.code(130);
}

#[test]
fn ui_refuses_to_listen_beyond_loopback() {
    let env = Env::start();
    let run = env.run(&["ui", "--listen", "0.0.0.0:0"]).code(2);
    assert!(
        run.stderr.contains("not a loopback address"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("ssh -L"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no link: {}", run.stdout);
}
