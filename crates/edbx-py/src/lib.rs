//! `eventdbx._native`: the Rust half of the `eventdbx` Python package (distribution `edbx`).
//!
//! Behaviour lives here, on top of the `edbx` client; the Python half (`python/eventdbx`) only
//! shapes arguments and results the way the official package 0.1.8 spells them. Every call of
//! `NativeClient` exists once and runs either blocking (the GIL released,
//! Ctrl-C honoured) or as an asyncio awaitable, chosen by its `asynchronous` argument.

mod bridge;
mod client;
mod errors;
mod export;
mod hello;
mod noise;
mod runtime;
mod stream;
mod subscription;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // Notes the main thread (which alone polls for Ctrl-C) and hooks fork().
    runtime::init(module.py())?;
    module.add_class::<client::NativeClient>()?;
    module.add_class::<stream::NativePageStream>()?;
    module.add_class::<subscription::NativeSubscription>()?;
    module.add_function(wrap_pyfunction!(
        subscription::load_checkpoint_file,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(
        subscription::save_checkpoint_file,
        module
    )?)?;
    module.add_class::<noise::NativeNoise>()?;
    module.add_function(wrap_pyfunction!(hello::build_hello, module)?)?;
    module.add_function(wrap_pyfunction!(hello::parse_hello, module)?)?;
    module.add_function(wrap_pyfunction!(noise::noise_psk, module)?)?;
    module.add_function(wrap_pyfunction!(client::config_from_env, module)?)?;
    module.add_function(wrap_pyfunction!(client::check_options, module)?)?;
    module.add("SERVER_NOISE_PATTERN", edbx_wire::SERVER_NOISE_PATTERN)?;
    module.add("PROTOCOL_VERSION", edbx_wire::PROTOCOL_VERSION)?;
    module.add("CORE_VERSION", env!("CARGO_PKG_VERSION"))?;
    module.add("LIMITS", client::limits(module.py())?)?;
    module.add("DEFAULTS", client::defaults(module.py())?)?;
    Ok(())
}
