//! Layer 7, **commands**: one module per subcommand, each returning the process exit code;
//! the command line (`cli`) and everything written for people (`show`, and each command's
//! own output). The last layer: it may use every layer before it, and nothing uses it but
//! `main.rs`.

pub mod cli;
pub mod show;

pub mod check;
pub mod login;
pub mod preview;
pub mod queue;
pub mod reload;
pub mod run;
