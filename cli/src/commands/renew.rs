//! `skysync renew`: rotate the refresh token now.

use skysync_core::host::{Clock, SystemClock};

use crate::context::Context;
use crate::exit;
use crate::output::{relative, timestamp};

/// Rotates (a refresh without `preserve_refresh_token`); the session saves before returning.
pub async fn run(ctx: &Context) -> anyhow::Result<u8> {
    let tokens = ctx.session()?.rotate().await?;
    let now = SystemClock.now();
    let out = ctx.output();
    if out.json {
        out.json_value(&serde_json::json!({
            "rotated": true,
            "refresh_expires_at": timestamp(tokens.refresh_expires_at),
            "refresh_days_left": tokens.refresh_time_left(now).as_secs() / 86_400,
        }))?;
    } else {
        out.line(format_args!(
            "Renewed: the new refresh token expires {} ({}).",
            timestamp(tokens.refresh_expires_at),
            relative(tokens.refresh_expires_at, now)
        ))?;
    }
    Ok(exit::OK)
}
