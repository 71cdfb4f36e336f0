//! The `skysync` binary: parse, run, report.

use std::process::ExitCode;

use clap::Parser;
use skysync_cli::{args::Cli, commands, exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            exit::report(&err);
            ExitCode::from(exit::code_for(&err))
        }
    }
}
