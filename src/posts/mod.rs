//! Layer 1, posts: what the maintainers commit, read and checked.
pub mod config;
pub mod diagnostic;
pub mod library;
pub mod markdown;
pub mod post;
