//! Integration tests of `edbx`, one binary (one link) for all of them: real servers started by
//! `edbx-testkit`, fake peers, and a fault-injecting proxy.

mod blocking;
mod chaos;
mod common;
mod engine;
mod fake_peer;
mod faults;
mod filters;
mod fold;
mod handshake;
mod hardening;
mod operations;
mod proxy;
mod quickstart;
mod scan;
mod subscribe;
mod subscribe_ledger;
mod subscribe_now;
mod subscribe_ties;
mod unlistable;
mod verify;
