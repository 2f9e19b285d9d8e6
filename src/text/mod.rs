//! Layer 2, text.
pub mod compose;
pub mod count;
pub mod html;
pub mod reply;
