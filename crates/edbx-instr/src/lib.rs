//! Support for `edbx-instr`, the instruction-count benchmark, shared with `edbx-bench`: the
//! raw-protocol session that both use as the ceiling.

pub mod raw;
