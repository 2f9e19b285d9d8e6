//! Layer 2, **text**: counting a status as each server counts it (`count`), composing a post
//! into what is sent (`compose`), reading status HTML (`html`), composing the reply to a
//! mention (`reply`).
//!
//! Pure: values in, values out; no files, no clock, no network, nothing printed (the tidy test
//! in `tests/it/tidy.rs` checks it). It knows the posts layer's types, and nothing after it:
//! not the state, the plan, a network or the daemon.

pub mod compose;
pub mod count;
pub mod html;
pub mod reply;
