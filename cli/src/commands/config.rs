//! `skysync config show|path`.

use crate::args::{ConfigCommand, GlobalArgs};
use crate::context::Output;
use crate::exit;
use crate::settings::resolve;

/// Prints the effective settings (secrets masked, with their sources) or the file's path.
pub fn run(g: &GlobalArgs, cmd: ConfigCommand) -> anyhow::Result<u8> {
    let out = Output::detect(g.json);
    let resolved = resolve(&crate::commands::config_source(g))?;
    let data_dir = crate::config::data_dir(&resolved.profile)?;
    match cmd {
        ConfigCommand::Path => {
            out.line(resolved.path.display())?;
        }
        ConfigCommand::Show if out.json => {
            let settings: serde_json::Map<String, serde_json::Value> = resolved
                .entries
                .iter()
                .map(|e| {
                    (
                        e.name.to_owned(),
                        serde_json::json!({"value": e.shown(), "source": e.source.to_string(), "secret": e.secret}),
                    )
                })
                .collect();
            out.json_value(&serde_json::json!({
                "profile": resolved.profile,
                "config_file": resolved.path,
                "config_file_found": resolved.file_found,
                "data_dir": data_dir,
                "settings": settings,
            }))?;
        }
        ConfigCommand::Show => {
            out.line(format_args!("profile:     {}", resolved.profile))?;
            let found = if resolved.file_found { "" } else { " (not found; using environment and defaults)" };
            out.line(format_args!("config file: {}{found}", resolved.path.display()))?;
            out.line(format_args!("data dir:    {}", data_dir.display()))?;
            out.line("")?;
            for e in &resolved.entries {
                let value = e.shown().unwrap_or_else(|| "(not set)".into());
                out.line(format_args!("{:<20} {:<48} [{}]", e.name, value, e.source))?;
            }
        }
    }
    // Validation problems are worth a note, but `show` itself succeeded.
    if let ConfigCommand::Show = cmd
        && let Err(e) = resolved.settings()
    {
        out.note(format_args!("warning: {e}"));
        return Ok(exit::CONFIG);
    }
    Ok(exit::OK)
}
