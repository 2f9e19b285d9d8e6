//! Layer 5, networks.
pub mod mastodon;
pub mod retry;
pub mod token;
