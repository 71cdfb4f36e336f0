//! `skysync status`: what expires when, from the token store alone (no call to Blackbaud).

use skysync_core::env::{Clock, SystemClock};
use skysync_core::store::TokenStore;
use skysync_core::{Health, Need, SessionError};

use crate::context::Context;
use crate::exit;
use crate::output::{coarse, relative, timestamp, timestamp_or_never};

/// Prints the status; the exit code says healthy (0), warning (10) or consent needed (4: the
/// refresh token expired, or the token endpoint refused it, a lost rotation included).
pub async fn run(ctx: &Context) -> anyhow::Result<u8> {
    let Some(stored) = ctx.store().load().await? else {
        return Err(SessionError::NotLoggedIn.into());
    };
    let t = &stored.tokens;
    let settings = ctx.settings();
    if t.client_id != settings.client_id {
        return Err(
            SessionError::WrongClient { stored: t.client_id.clone(), configured: settings.client_id.clone() }.into()
        );
    }
    let now = SystemClock.now();
    let policy = settings.policy;
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
    let rescue = ctx.store().pending_rescue().await;
    let advice = match (health, need) {
        _ if refused => match (t.rotation_started_at, t.grant_refused_at) {
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
        _ if rescue.is_some() => {
            "the newest tokens are in a rescue file (a save failed); the next run adopts them into the token file"
                .to_owned()
        }
        (_, Need::Rotate) => "inside the renewal window; the next run rotates the refresh token".to_owned(),
        _ => "healthy".to_owned(),
    };
    let out = ctx.output();
    if out.json {
        out.json_value(&serde_json::json!({
            "profile": ctx.profile(),
            "health": if refused { serde_json::json!("consent_needed") } else { serde_json::json!(health) },
            "exit_code": code,
            "message": advice,
            "environment_id": t.identity.environment_id,
            "environment_name": t.identity.environment_name,
            "legal_entity_name": t.identity.legal_entity_name,
            "user": t.identity.user_display(),
            "email": t.identity.email,
            "access_token_valid": access_valid,
            "access_expires_at": t.access_expires_at.map(timestamp),
            "refresh_expires_at": timestamp(t.refresh_expires_at),
            "refresh_days_left": left.as_secs() / 86_400,
            "refresh_obtained_at": timestamp(t.refresh_obtained_at),
            "consented_at": timestamp(t.consented_at),
            "last_refreshed_at": t.last_refreshed_at.map(timestamp),
            "last_rotated_at": t.last_rotated_at.map(timestamp),
            "rotation_started_at": t.rotation_started_at.map(timestamp),
            "rotation_lost": refused && t.rotation_started_at.is_some(),
            "grant_refused_at": t.grant_refused_at.map(timestamp),
            "rescue_file": rescue,
            "needs_rotation": need == Need::Rotate,
            "token_file": ctx.store().path(),
            "token_store": ctx.store().kind(),
        }))?;
    } else {
        let access = match t.access_expires_at {
            _ if refused => "not used: the grant was refused".into(),
            Some(at) if access_valid => format!("valid until {} ({})", timestamp(at), relative(at, now)),
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
            ("Days left", (left.as_secs() / 86_400).to_string()),
            ("Consented", timestamp(t.consented_at)),
            ("Last refresh", timestamp_or_never(t.last_refreshed_at)),
            ("Last rotation", timestamp_or_never(t.last_rotated_at)),
            ("Status", advice),
        ];
        for (k, v) in lines {
            out.line(format_args!("{:<14} {v}", format!("{k}:")))?;
        }
    }
    Ok(code)
}
