//! `notify_command` (a profile setting, or `SKYSYNC_NOTIFY_COMMAND`): a shell command run after a
//! command when a person should hear about it before day 365, with one JSON object on stdin:
//!
//! ```json
//! {"profile": "default", "command": "sync", "events": ["run_failed", "consent_soon"],
//!  "exit_code": 4, "message": "…", "refresh_expires_at": "…", "refresh_days_left": 12}
//! ```
//!
//! Events: `run_failed` (an exit code other than 0 and `status`'s 10), `consent_soon` (the refresh
//! token expires within the warning window, or has expired), `rotation_lost` (a rotation's
//! response was lost and the token endpoint then refused the stored token). The message is the
//! error's text, which never holds a secret. The command runs with `sh -c`, without the
//! environment's secrets (`SKYSYNC_CLIENT_SECRET`, `SKYSYNC_SUBSCRIPTION_KEY`, `PGPASSWORD`), for
//! at most [`NOTIFY_TIMEOUT`]; its failure is a warning and never changes the exit code.

use std::process::Stdio;
use std::time::Duration;

use skysync_core::host::{Clock, SystemClock};
use skysync_core::store::TokenStore;
use skysync_core::{Health, TokenSet};
use tokio::io::AsyncWriteExt;

use crate::context::Context;
use crate::output::timestamp;

/// How long the notify command may run.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Variables the notify command does not inherit.
const WITHHELD: &[&str] = &["SKYSYNC_CLIENT_SECRET", "SKYSYNC_SUBSCRIPTION_KEY", "PGPASSWORD"];

/// The events of a finished command, given its exit code and the stored tokens afterwards.
pub fn events(code: u8, tokens: Option<&TokenSet>, ctx: &Context) -> Vec<&'static str> {
    let mut events = Vec::new();
    if code != crate::exit::OK && code != crate::exit::WARNING {
        events.push("run_failed");
    }
    if let Some(t) = tokens {
        if t.grant_refused_at.is_some() && t.rotation_started_at.is_some() {
            events.push("rotation_lost");
        }
        if ctx.settings().policy.health(t, SystemClock.now()) != Health::Healthy {
            events.push("consent_soon");
        }
    }
    events
}

/// Runs the profile's notify command when the finished command (`name`, exit `code`, `error`)
/// has something to report.
pub async fn after(ctx: &Context, name: &str, code: u8, error: Option<String>) {
    let Some(command) = ctx.settings().notify_command.clone() else { return };
    let tokens = ctx.store().load().await.ok().flatten().map(|v| v.tokens);
    let events = events(code, tokens.as_ref(), ctx);
    if events.is_empty() {
        return;
    }
    let now = SystemClock.now();
    let payload = serde_json::json!({
        "profile": ctx.profile(),
        "command": name,
        "events": events,
        "exit_code": code,
        "message": error,
        "refresh_expires_at": tokens.as_ref().map(|t| timestamp(t.refresh_expires_at)),
        "refresh_days_left": tokens.as_ref().map(|t| t.refresh_time_left(now).as_secs() / 86_400),
    });
    if let Err(e) = run(&command, payload.to_string()).await {
        tracing::warn!("notify_command failed: {e}");
    }
}

async fn run(command: &str, payload: String) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c").arg(command).stdin(Stdio::piped()).stdout(Stdio::null()).kill_on_drop(true);
    for name in WITHHELD {
        cmd.env_remove(name);
    }
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine.
        let _ = stdin.write_all(payload.as_bytes()).await;
    }
    let status = tokio::time::timeout(NOTIFY_TIMEOUT, child.wait())
        .await
        .map_err(|_| anyhow::anyhow!("it ran longer than {} s and was stopped", NOTIFY_TIMEOUT.as_secs()))??;
    anyhow::ensure!(status.success(), "it exited with {status}");
    Ok(())
}
