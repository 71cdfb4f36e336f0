//! `skysync logout`: forget this profile's tokens (in the file or the PostgreSQL store).

use std::io::{BufRead, IsTerminal, Write};

use skysync_core::store::TokenStore;

use crate::args::{GlobalArgs, LogoutArgs};
use crate::context::Output;
use crate::exit::{self, UsageError};

/// Removes the tokens, the previous set and any rescue file (under the lock), after confirmation.
pub async fn run(g: &GlobalArgs, args: LogoutArgs) -> anyhow::Result<u8> {
    let (profile, store) = super::token_store::profile_store(g)?;
    let out = Output::detect(g.json);
    if !store.has_tokens().await? {
        if out.json {
            out.json_value(&serde_json::json!({"profile": profile, "removed": false}))?;
        } else {
            out.note(format_args!("No tokens are stored for profile `{profile}`."));
        }
        return Ok(exit::OK);
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UsageError(
                "refusing to remove tokens without confirmation; pass --yes to logout non-interactively".into(),
            )
            .into());
        }
        eprint!(
            "Remove the tokens of profile `{profile}` ({})? Consent will be needed again. [y/N] ",
            store.path().display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            out.note("Nothing removed.");
            return Ok(exit::OK);
        }
    }
    let _lock = store.lock().await?;
    let removed = store.remove().await?;
    if out.json {
        out.json_value(&serde_json::json!({"profile": profile, "removed": removed}))?;
    } else {
        out.line(format_args!("Removed the tokens of profile `{profile}`."))?;
    }
    Ok(exit::OK)
}
