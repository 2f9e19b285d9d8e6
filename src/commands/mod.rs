//! One module per subcommand; each returns the process exit code.

pub mod cli;
pub mod show;

pub mod check;
pub mod login;
pub mod preview;
pub mod queue;
pub mod reload;
pub mod run;
