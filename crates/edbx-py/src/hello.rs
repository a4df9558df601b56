//! The connection-opening hello, for `eventdbx.control_schema`.

use edbx_wire::{ControlHello, build_control_hello};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::invalid_input;

/// The bytes of a `ControlHello` exactly as the client sends them (a bare Cap'n Proto message).
#[pyfunction]
#[pyo3(signature = (protocol_version, token, tenant_id, no_noise=false))]
pub(crate) fn build_hello<'py>(
    py: Python<'py>,
    protocol_version: i64,
    token: &str,
    tenant_id: &str,
    no_noise: bool,
) -> PyResult<Bound<'py, PyBytes>> {
    let version = u16::try_from(protocol_version)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            invalid_input(
                py,
                format!("protocol_version must be between 1 and 65535, got {protocol_version}"),
            )
        })?;
    let hello = build_control_hello(version, token, tenant_id)
        .map_err(|e| invalid_input(py, e.to_string()))?
        .with_no_noise(no_noise);
    Ok(PyBytes::new(py, &hello.to_bytes()))
}

/// Reads a `ControlHello` back: `(protocol_version, token, tenant_id, no_noise)`.
#[pyfunction]
pub(crate) fn parse_hello(py: Python<'_>, data: &[u8]) -> PyResult<(u16, String, String, bool)> {
    let hello = ControlHello::parse(data).map_err(|e| invalid_input(py, e.to_string()))?;
    Ok((
        hello.protocol_version(),
        hello.token().to_owned(),
        hello.tenant_id().to_owned(),
        hello.no_noise(),
    ))
}
