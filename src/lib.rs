//! perennial: keeps a community's fediverse account alive.

pub mod cli;
pub mod commands;
pub mod compose;
pub mod config;
pub mod count;
pub mod diagnostic;
pub mod library;
pub mod markdown;
pub mod post;
