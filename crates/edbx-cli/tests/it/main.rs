//! Tests of the `edbx` binary as a user runs it: real servers started by `edbx-testkit`, the
//! built binary driven through its arguments, stdin, pipes and a pseudo-terminal.

mod audit;
mod common;
mod exit_codes;
mod follow;
mod help;
mod import_export;
mod operations;
mod parquet;
mod profiles;
mod pty;
mod shell;
mod subscribe;
mod ui;
