//! `skysync man`: manual pages (roff) generated from the command-line definition, so they list
//! every flag with its values and default, and each command's examples, as `--help` does.

use std::path::PathBuf;

use clap::{Args, CommandFactory};

use crate::args::Cli;

/// `skysync man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write a page per command (skysync.1, skysync-sync.1, skysync-sync-status.1, …) into this
    /// directory instead of printing skysync(1).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// skysync(1) as roff.
pub fn render() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Prints skysync(1), or writes every page into `--dir`.
pub fn run(args: &ManArgs) -> anyhow::Result<u8> {
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(Cli::command(), dir)?;
        }
        None => crate::output::write_stdout(&render()?)?,
    }
    Ok(crate::exit::OK)
}
