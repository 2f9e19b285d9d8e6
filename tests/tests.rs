//! Integration tests: data-driven fixtures through the library, and the real binary run as a
//! user runs it. One test binary (as ripgrep does) so the crate is linked once.

#[path = "it/support.rs"]
mod support;

#[path = "it/bundled.rs"]
mod bundled;
#[path = "it/check_command.rs"]
mod check_command;
#[path = "it/compose_props.rs"]
mod compose_props;
#[path = "it/config_files.rs"]
mod config_files;
#[path = "it/post_files.rs"]
mod post_files;
#[path = "it/preview_command.rs"]
mod preview_command;
