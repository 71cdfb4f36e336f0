//! The `skysync` binary: parse, run, report.

use std::process::ExitCode;

use clap::Parser;
use skysync_cli::{args::Cli, commands, exit, output};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = e.print();
            // The command line did not parse, so `--json` is looked for among the raw arguments.
            if code != exit::OK && json_requested() {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
                output::print_json_error(code, first);
            }
            return ExitCode::from(code);
        }
    };
    let json = cli.wants_json();
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            exit::report(&err);
            let code = exit::code_for(&err);
            if json {
                output::print_json_error(code, &message(&err));
            }
            ExitCode::from(code)
        }
    }
}

/// Whether `--json` is among the arguments (before a `--`).
fn json_requested() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// The error and its causes on one line, each text once (as `exit::report` prints them).
fn message(err: &anyhow::Error) -> String {
    let mut parts = vec![exit::with_command(err.as_ref())];
    let mut seen = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if text.is_empty() || seen.contains(&text) {
            continue;
        }
        parts.push(exit::with_command(cause));
        seen = text;
    }
    parts.join(": ")
}
