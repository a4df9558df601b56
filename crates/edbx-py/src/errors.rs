//! `edbx::Error` to Python exceptions. The exception classes live in `eventdbx.errors` (Python,
//! so that they carry fields and pickle like any other); this side only says what happened.

use edbx::ErrorKind;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The `snake_case` name of a kind, as `eventdbx.errors` knows them.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Config => "config",
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Connect => "connect",
        ErrorKind::Handshake => "handshake",
        ErrorKind::Timeout => "timeout",
        ErrorKind::NotSent => "not_sent",
        ErrorKind::Disconnected => "disconnected",
        ErrorKind::OutcomeUnknown => "outcome_unknown",
        ErrorKind::Server => "server",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Decode => "decode",
        ErrorKind::Closed => "closed",
        ErrorKind::ReplyTooLarge => "reply_too_large",
        ErrorKind::InvalidCheckpoint => "invalid_checkpoint",
        _ => "other",
    }
}

/// Builds the Python exception for `error` with `eventdbx.errors._from_native`.
pub(crate) fn to_py_err(py: Python<'_>, error: edbx::Error) -> PyErr {
    let code = error.server_code().map(|c| c.as_str().to_owned());
    let args = (
        kind_name(error.kind()),
        error.message().to_owned(),
        code,
        error.outcome_unknown(),
        error.is_retryable(),
        error.is_timeout(),
        error.is_auth(),
    );
    build(py, args).unwrap_or_else(|import_failure| {
        // Only a broken installation gets here; keep the message anyway.
        let err = PyRuntimeError::new_err(error.to_string());
        err.set_cause(py, Some(import_failure));
        err
    })
}

/// The exception for input refused before anything was sent (a `ValueError`).
pub(crate) fn invalid_input(py: Python<'_>, message: impl Into<String>) -> PyErr {
    let message = message.into();
    let args = (
        "invalid_input",
        message.clone(),
        None,
        false,
        false,
        false,
        false,
    );
    build(py, args).unwrap_or_else(|_| pyo3::exceptions::PyValueError::new_err(message))
}

type Args = (&'static str, String, Option<String>, bool, bool, bool, bool);

fn build(py: Python<'_>, args: Args) -> PyResult<PyErr> {
    let factory = FACTORY.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py
            .import("eventdbx.errors")?
            .getattr("_from_native")?
            .unbind())
    })?;
    Ok(PyErr::from_value(factory.bind(py).call1(args)?))
}
