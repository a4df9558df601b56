//! Noise sessions for `eventdbx.noise`, over `edbx-wire`'s `snow`-based `NoiseSession`.

use std::sync::Mutex;

use edbx_wire::{NoiseKeys, NoiseSession, WireError};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// One side of a Noise session: handshake messages, then transport encryption.
#[pyclass(frozen, module = "eventdbx._native")]
pub(crate) struct NativeNoise {
    session: Mutex<NoiseSession>,
}

fn noise_err(e: WireError) -> PyErr {
    match e {
        WireError::InvalidInput(_) | WireError::TooLarge { .. } => {
            PyValueError::new_err(e.to_string())
        }
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

fn key32(what: &str, bytes: &[u8]) -> PyResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| PyValueError::new_err(format!("{what} must be 32 bytes, got {}", bytes.len())))
}

impl NativeNoise {
    fn with<T>(&self, f: impl FnOnce(&mut NoiseSession) -> T) -> T {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut session)
    }
}

#[pymethods]
impl NativeNoise {
    #[new]
    #[pyo3(signature = (pattern, initiator, psk=None, prologue=b"".as_slice(), local_static=None, remote_static=None))]
    fn new(
        pattern: &str,
        initiator: bool,
        psk: Option<&[u8]>,
        prologue: &[u8],
        local_static: Option<&[u8]>,
        remote_static: Option<&[u8]>,
    ) -> PyResult<Self> {
        let psk = psk.map(|k| key32("psk", k)).transpose()?;
        let local = local_static.map(|k| key32("local_static", k)).transpose()?;
        let remote = remote_static
            .map(|k| key32("remote_static", k))
            .transpose()?;
        let keys = NoiseKeys {
            psk: psk.as_ref(),
            prologue,
            local_private_key: local.as_ref().map(|k| k.as_slice()),
            remote_public_key: remote.as_ref().map(|k| k.as_slice()),
        };
        let session = NoiseSession::with_keys(pattern, initiator, keys).map_err(noise_err)?;
        Ok(Self {
            session: Mutex::new(session),
        })
    }

    /// The Noise protocol name.
    #[getter]
    fn pattern(&self) -> String {
        self.with(|s| s.pattern().to_owned())
    }

    /// Whether the handshake is complete.
    #[getter]
    fn handshake_finished(&self) -> bool {
        self.with(|s| s.is_handshake_finished())
    }

    /// The handshake hash, once finished.
    #[getter]
    fn handshake_hash<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.with(|s| s.handshake_hash().map(|h| PyBytes::new(py, h)))
    }

    /// The peer's static public key, once known.
    #[getter]
    fn remote_static<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.with(|s| s.remote_static().map(|k| PyBytes::new(py, k)))
    }

    fn write_message<'py>(&self, py: Python<'py>, payload: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.with(|s| s.write_message(payload)).map_err(noise_err)?;
        Ok(PyBytes::new(py, &out))
    }

    fn read_message<'py>(&self, py: Python<'py>, message: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.with(|s| s.read_message(message)).map_err(noise_err)?;
        Ok(PyBytes::new(py, &out))
    }

    fn encrypt<'py>(&self, py: Python<'py>, plaintext: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.with(|s| s.encrypt(plaintext)).map_err(noise_err)?;
        Ok(PyBytes::new(py, &out))
    }

    fn decrypt<'py>(&self, py: Python<'py>, ciphertext: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.with(|s| s.decrypt(ciphertext)).map_err(noise_err)?;
        Ok(PyBytes::new(py, &out))
    }
}

/// The PSK the server derives from a token: SHA-256 of the trimmed token.
#[pyfunction]
pub(crate) fn noise_psk<'py>(py: Python<'py>, token: &str) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &edbx_wire::noise_psk(token))
}
