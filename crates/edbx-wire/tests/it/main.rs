//! Integration tests of `edbx-wire`, one binary: codecs, the hello, and the check that the
//! checked-in generated code matches the schemas.

mod codec;
mod generated_fresh;
mod hello;
