//! `skysync status`: what expires when, from the token store alone (no call to Blackbaud).

use skysync_core::host::{Clock, SystemClock};
use skysync_core::store::TokenStore;
use skysync_core::{Health, Need, SessionError, TokenSet};

use crate::context::Context;
use crate::exit;
use crate::output::{coarse, relative, timestamp, timestamp_or_never};

/// Prints the status; the exit code says healthy (0), warning (10) or consent needed (4: the
/// refresh token expired, or the token endpoint refused it, a lost rotation included).
pub async fn run(ctx: &Context) -> anyhow::Result<u8> {
    let tokens = load(ctx).await?;
    let now = SystemClock.now();
    let rescue = ctx.store().pending_rescue().await;
    let a = assess(ctx, &tokens, now, rescue);
    if ctx.output().json {
        print_json(ctx, &tokens, &a)?;
    } else {
        print_text(ctx, &tokens, &a, now)?;
    }
    Ok(a.code)
}

/// The stored tokens, if they are this application's.
async fn load(ctx: &Context) -> anyhow::Result<TokenSet> {
    let Some(stored) = ctx.store().load().await? else {
        return Err(SessionError::NotLoggedIn.into());
    };
    let t = stored.tokens;
    let configured = &ctx.settings().client_id;
    if &t.client_id != configured {
        return Err(SessionError::WrongClient { stored: t.client_id.clone(), configured: configured.clone() }.into());
    }
    Ok(t)
}

/// What the status says about the tokens at `now`.
struct Assessment {
    health: Health,
    need: Need,
    /// Until the refresh token expires.
    left: std::time::Duration,
    /// The token endpoint refused the grant.
    refused: bool,
    access_valid: bool,
    code: u8,
    advice: String,
    rescue: Option<std::path::PathBuf>,
}

fn assess(ctx: &Context, t: &TokenSet, now: time::OffsetDateTime, rescue: Option<std::path::PathBuf>) -> Assessment {
    let policy = ctx.settings().policy;
    let health = policy.health(t, now);
    let need = policy.need(t, now);
    let left = t.refresh_time_left(now);
    let refused = t.grant_refused_at.is_some();
    // A refused grant's access token is never handed out, whatever its expiry says.
    let access_valid = !refused && t.usable_access_token(now, std::time::Duration::ZERO).is_some();
    let code = match health {
        _ if refused => exit::CONSENT,
        Health::Healthy => exit::OK,
        Health::Warning => exit::WARNING,
        Health::Expired => exit::CONSENT,
    };
    let advice = advice(t, health, need, left, rescue.is_some());
    Assessment { health, need, left, refused, access_valid, code, advice, rescue }
}

/// The one-line verdict and what to do about it.
fn advice(t: &TokenSet, health: Health, need: Need, left: std::time::Duration, rescued: bool) -> String {
    match (health, need) {
        _ if t.grant_refused_at.is_some() => match (t.rotation_started_at, t.grant_refused_at) {
            (Some(sent), Some(at)) => format!(
                "consent needed: a rotation sent at {} lost its response, and the token endpoint refused the stored refresh token at {}; run `skysync login` (or `skysync import`)",
                timestamp(sent),
                timestamp(at)
            ),
            (_, at) => format!(
                "consent needed: the token endpoint refused the refresh token (invalid_grant) at {}; run `skysync login` (or `skysync import`)",
                timestamp_or_never(at)
            ),
        },
        (Health::Expired, _) => "the refresh token has expired; run `skysync login` to consent again".to_owned(),
        (Health::Warning, _) => format!(
            "the refresh token expires in {}; run `skysync renew` (or let the nightly job rotate it)",
            coarse(left)
        ),
        _ if t.rotation_started_at.is_some() => {
            "a rotation's response never arrived; the next refresh shows whether the stored refresh token still works"
                .to_owned()
        }
        _ if rescued => {
            "the newest tokens are in a rescue file (a save failed); the next run adopts them into the token file"
                .to_owned()
        }
        (_, Need::Rotate) => "inside the renewal window; the next run rotates the refresh token".to_owned(),
        _ => "healthy".to_owned(),
    }
}

fn print_json(ctx: &Context, t: &TokenSet, a: &Assessment) -> anyhow::Result<()> {
    ctx.output().json_value(&serde_json::json!({
        "profile": ctx.profile(),
        "health": if a.refused { serde_json::json!("consent_needed") } else { serde_json::json!(a.health) },
        "exit_code": a.code,
        "message": a.advice,
        "environment_id": t.identity.environment_id,
        "environment_name": t.identity.environment_name,
        "legal_entity_name": t.identity.legal_entity_name,
        "user": t.identity.user_display(),
        "email": t.identity.email,
        "access_token_valid": a.access_valid,
        "access_expires_at": t.access_expires_at.map(timestamp),
        "refresh_expires_at": timestamp(t.refresh_expires_at),
        "refresh_days_left": a.left.as_secs() / 86_400,
        "refresh_obtained_at": timestamp(t.refresh_obtained_at),
        "consented_at": timestamp(t.consented_at),
        "last_refreshed_at": t.last_refreshed_at.map(timestamp),
        "last_rotated_at": t.last_rotated_at.map(timestamp),
        "rotation_started_at": t.rotation_started_at.map(timestamp),
        "rotation_lost": a.refused && t.rotation_started_at.is_some(),
        "grant_refused_at": t.grant_refused_at.map(timestamp),
        "rescue_file": a.rescue,
        "needs_rotation": a.need == Need::Rotate,
        "token_file": ctx.store().path(),
        "token_store": ctx.store().kind(),
    }))?;
    Ok(())
}

fn print_text(ctx: &Context, t: &TokenSet, a: &Assessment, now: time::OffsetDateTime) -> anyhow::Result<()> {
    let access = match t.access_expires_at {
        _ if a.refused => "not used: the grant was refused".into(),
        Some(at) if a.access_valid => format!("valid until {} ({})", timestamp(at), relative(at, now)),
        Some(at) => format!("expired {} (refreshed on next use)", relative(at, now)),
        None => "none (obtained on next use)".into(),
    };
    let lines = [
        ("Profile", ctx.profile().to_owned()),
        ("Environment", t.identity.environment_display()),
        ("User", t.identity.user_display()),
        ("Access token", access),
        (
            "Refresh token",
            format!("expires {} ({})", timestamp(t.refresh_expires_at), relative(t.refresh_expires_at, now)),
        ),
        ("Days left", (a.left.as_secs() / 86_400).to_string()),
        ("Consented", timestamp(t.consented_at)),
        ("Last refresh", timestamp_or_never(t.last_refreshed_at)),
        ("Last rotation", timestamp_or_never(t.last_rotated_at)),
        ("Status", a.advice.clone()),
    ];
    let table: Vec<String> = lines.iter().map(|(k, v)| format!("{:<14} {v}", format!("{k}:"))).collect();
    ctx.output().table(&table.join("\n"))?;
    Ok(())
}
