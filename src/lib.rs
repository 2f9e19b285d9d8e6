//! perennial: keeps a community's fediverse account alive.
//!
//! The folders are the layers, in the order data flows (ARCHITECTURE.md draws them and says
//! what each must not know; `tests/it/tidy.rs` fails the build when an import runs upward):
//! [`posts`] → [`text`] → [`state`] → [`plan`] → [`network`] → [`daemon`] → [`commands`].

pub mod commands;
pub mod daemon;
pub mod network;
pub mod plan;
pub mod posts;
pub mod state;
pub mod text;

/// Test machinery, not in a release build: Cargo.toml's `testing` feature says who turns it on.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzz_checks;
