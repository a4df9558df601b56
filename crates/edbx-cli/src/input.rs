//! Values given on the command line: inline, `@file`, or `-` for stdin.

use std::io::Read;

use serde_json::Value;

use crate::exit::{Failure, Outcome};

/// The text of an argument: `-` reads stdin, `@path` reads the file, anything else is itself.
pub fn text(what: &str, arg: &str) -> Outcome<String> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("reading the {what} from stdin: {e}")))?;
        return Ok(text);
    }
    if let Some(path) = arg.strip_prefix('@') {
        return std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("reading the {what} from {path}: {e}")));
    }
    Ok(arg.to_owned())
}

/// A JSON argument (inline, `@file` or `-`), parsed.
pub fn json(what: &str, arg: &str) -> Outcome<Value> {
    let text = text(what, arg)?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!("the {what} is not valid JSON: {e}"))
            .hint("quote it for the shell ('{\"key\": \"value\"}'), or use @file or -")
    })
}
