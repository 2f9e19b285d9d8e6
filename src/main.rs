//! The `perennial` binary: parses arguments, runs one subcommand, owns the exit code.

use std::process::ExitCode;

use clap::Parser;
use perennial::commands;
use perennial::commands::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Check(args) => commands::check::run(&cli.config, args),
        Command::Preview(args) => commands::preview::run(&cli.config, args),
        Command::Queue(args) => commands::queue::run(&cli.config, args),
        Command::Run(args) => commands::run::run(&cli.config, args),
        Command::Post(args) => commands::run::post(&cli.config, args),
        Command::Login(args) => commands::login::run(&cli.config, args),
        Command::Reload(args) => commands::reload::run(&cli.config, args),
    };
    ExitCode::from(code)
}
