//! `skysync completions SHELL`: a completion script generated from the command-line definition,
//! so it never drifts from the flags.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};

/// Writes the completion script for `args.shell` to stdout.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "skysync", &mut out);
    crate::output::write_stdout(&out)?;
    Ok(crate::exit::OK)
}
