//! killswitch: a terminal console for feature-flag kill switches during incidents.
//!
//! The binary (`src/main.rs`) only parses the command line and calls into this library, so the
//! tests and benchmarks drive exactly the code the operator runs.

pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod discover;
pub mod exit;
pub mod flip;
/// Test-only (the vendor parsers' unit tests fuzz their private parsers with it): the file lives
/// with the other test helpers under `tests/support/`, and is compiled only for unit tests.
#[cfg(test)]
#[path = "../tests/support/fuzz_json.rs"]
mod fuzz_support;
pub mod model;
pub mod notify;
pub mod outcome;
pub mod provider;
pub mod redact;
pub mod rollout;
pub mod secret;
pub mod serve;
pub mod session;
pub mod text;
pub mod tui;
pub mod vault;
pub mod workspace;
