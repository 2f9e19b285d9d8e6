//! Layer 1, **posts**: what the maintainers commit (`config.toml` and the files under
//! `posts/`), read and checked. A bad file is a [`diagnostic::Diagnostic`] at its file, line
//! and column, never a crash; nothing a post names may reach outside `posts/`.
//!
//! It reads files (`library`), and turns a post's Markdown body into plain text (`markdown`)
//! because that is part of reading a post. It must not know how text is counted or composed,
//! the state, the plan, any network, the daemon or the commands: everything here comes before
//! them in the flow.

pub mod config;
pub mod diagnostic;
pub mod library;
pub mod markdown;
pub mod post;
