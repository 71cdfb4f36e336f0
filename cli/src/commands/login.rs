//! `skysync login`: one browser consent (PKCE + state), then tokens in the store.

use std::time::Duration;

use skysync_core::TokenSet;
use skysync_core::authorize::start_authorization;
use skysync_core::host::{Clock, OsEntropy, SystemClock};

use crate::args::LoginArgs;
use crate::context::Context;
use crate::exit;
use crate::login::{bind_listener, exchange_and_store, open_browser, read_pasted, receive_callback};
use crate::output::{relative, timestamp};

/// Runs the consent and stores the tokens.
pub async fn run(ctx: &Context, args: LoginArgs) -> anyhow::Result<u8> {
    ctx.require_client_secret()?;
    ctx.require_usable_store_key().await?;
    let mut oauth = ctx.settings().oauth();
    let out = ctx.output();
    let timeout = Duration::from_secs(args.timeout.max(1));
    let listener = if args.manual { None } else { Some(bind_listener(&oauth.redirect_uri).await?) };
    if let Some(listener) = &listener {
        // A redirect_uri with port 0 listens on any free port and sends that one.
        oauth.redirect_uri = listener.redirect_uri(&oauth.redirect_uri)?;
    }
    let pending = start_authorization(&oauth, &OsEntropy);
    out.note("Open this URL in a browser and consent as a Blackbaud user with access to the environment:");
    // The URL stands alone on its line so it can be copied (or read by a script).
    out.note(pending.url.as_str());
    let code = if let Some(listener) = listener {
        if !args.no_browser && !open_browser(&pending.url) {
            out.note("(Could not open a browser; open the URL above yourself.)");
        }
        out.note(format_args!("Waiting up to {}s for the browser to return…", timeout.as_secs()));
        receive_callback(listener, &pending, timeout).await?
    } else {
        out.note("Then paste the URL the browser was redirected to (it may show an error page; copy the address bar), or just its code:");
        read_pasted(&pending, timeout).await?
    };
    let tokens = exchange_and_store(ctx, code, Some(pending.verifier), &pending.redirect_uri).await?;
    print_consent(ctx, &tokens, "Logged in")?;
    Ok(exit::OK)
}

/// Prints who consented, to which environment, and when the refresh token expires.
pub fn print_consent(ctx: &Context, tokens: &TokenSet, headline: &str) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let out = ctx.output();
    if out.json {
        out.json_value(&serde_json::json!({
            "profile": ctx.profile(),
            "user": tokens.identity.user_display(),
            "email": tokens.identity.email,
            "environment_id": tokens.identity.environment_id,
            "environment_name": tokens.identity.environment_name,
            "refresh_expires_at": timestamp(tokens.refresh_expires_at),
            "token_file": ctx.store().path(),
        }))?;
    } else {
        out.line(format_args!("{headline} (profile `{}`).", ctx.profile()))?;
        out.line(format_args!("  User:          {}", tokens.identity.user_display()))?;
        out.line(format_args!("  Environment:   {}", tokens.identity.environment_display()))?;
        out.line(format_args!(
            "  Refresh token: expires {} ({})",
            timestamp(tokens.refresh_expires_at),
            relative(tokens.refresh_expires_at, now)
        ))?;
        out.line(format_args!("  Saved to:      {}", ctx.store().path().display()))?;
    }
    Ok(())
}
