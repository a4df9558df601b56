//! The front end, compiled into the binary: one page, its script and style, and the vendored
//! uPlot (see `assets/vendor/README.md`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::failure;

const INDEX: &str = include_str!("../assets/index.html");

/// Name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/app.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/vendor/uPlot.min.css"),
    ),
];

pub(crate) async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => {
            ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
        }
        None => failure(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the store are attacker-controlled: the front end (and what it vendors) must
    /// never turn text into HTML or code. The browser tests check the behaviour; this keeps
    /// the means out.
    #[test]
    fn the_front_end_never_turns_text_into_html_or_code() {
        for (name, _, bytes) in ASSETS {
            let text = String::from_utf8_lossy(bytes);
            for forbidden in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "setAttribute(\"style",
                "setAttribute('style",
            ] {
                assert!(!text.contains(forbidden), "{name} uses {forbidden}");
            }
        }
        assert!(!INDEX.contains("<script>"), "no inline script");
        assert!(!INDEX.contains(" onload") && !INDEX.contains(" onclick"));
        assert!(!INDEX.contains("style="), "no inline style");
    }
}
