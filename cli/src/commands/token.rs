//! `skysync token`: only a valid access token on stdout, for scripts.

use skysync_core::host::{Clock, SystemClock};

use crate::args::TokenArgs;
use crate::context::Context;
use crate::exit;
use crate::output::timestamp;

/// Prints the access token (refreshing it first when due).
pub async fn run(ctx: &Context, args: TokenArgs) -> anyhow::Result<u8> {
    let session = ctx.session()?;
    let tokens = session.tokens().await?;
    let Some(token) = tokens.usable_access_token(SystemClock.now(), std::time::Duration::ZERO) else {
        anyhow::bail!("the token endpoint returned no usable access token");
    };
    let out = ctx.output();
    if out.json {
        out.json_value(&serde_json::json!({
            "access_token": token.secret(),
            "token_type": "Bearer",
            "expires_at": tokens.access_expires_at.map(timestamp),
        }))?;
    } else if args.header {
        out.line(format_args!("Authorization: Bearer {}", token.secret()))?;
    } else {
        out.line(token.secret())?;
    }
    Ok(exit::OK)
}
