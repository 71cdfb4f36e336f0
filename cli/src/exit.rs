//! Exit codes, and how an error maps to one.
//!
//! Scripts and monitoring rely on these, so they are documented in `--help` and the README and
//! never change meaning.

use skysync_core::api::ApiError;
use skysync_core::authorize::CallbackError;
use skysync_core::bundle::BundleError;
use skysync_core::bundle_seal::SealError;
use skysync_core::session::SessionError;
use skysync_core::store::StoreError;
use skysync_core::token::TokenError;

use crate::config::ConfigError;

/// Success.
pub const OK: u8 = 0;
/// Any failure without a more specific code.
pub const FAILURE: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;
/// The configuration is missing or wrong.
pub const CONFIG: u8 = 3;
/// A person must consent again (`skysync login`): no tokens, an expired or revoked refresh token.
pub const CONSENT: u8 = 4;
/// Rate-limited or out of daily quota.
pub const THROTTLED: u8 = 5;
/// `skysync sync`: another sync holds this database's lock (it waited `--lock-wait` seconds); any
/// command: another process held the PostgreSQL token store's lock too long.
pub const BUSY: u8 = 6;
/// `skysync status`: the refresh token expires within the warning window.
pub const WARNING: u8 = 10;
/// `skysync sync status`: the last run of at least one entity failed.
pub const LAST_RUN_FAILED: u8 = 11;

/// The text `--help` shows after the options.
pub const HELP_TEXT: &str = "\
Exit codes:
  0   success
  1   failure
  2   usage error (bad command line)
  3   configuration missing or invalid: a setting, the application id, secret or client_auth
      refused by the token endpoint (invalid_client), or the token store key
      (SKYSYNC_TOKEN_KEY_FILE or the systemd credential skysync-token-key): missing,
      unreadable, or not the store's key
  4   consent needed (run `skysync login`): no tokens, the refresh token expired or was refused
      (invalid_grant, a lost rotation included), an imported authorization code expired, or a
      rotated refresh token could not be saved (the message names the rescue file holding it;
      the next run adopts it), or the tokens were handed over with `skysync export` (the
      message says where; `skysync import` of a bundle takes them back)
  5   throttled (HTTP 429 from the API or the token endpoint) or out of SKY API quota
      (Blackbaud's 403; `sync --json` says when it replenishes in stopped.resume_at). A
      planned stop at --call-budget or the daily_quota setting is not an error: exit 0
  6   busy: `skysync sync`: another sync is running on the same database (waited --lock-wait
      seconds); any command with a PostgreSQL token store: another process, on this host or
      another, held the profile's token lock longer than SKYSYNC_TOKEN_LOCK_WAIT (120 s)
  10  `skysync status`: the refresh token expires within the warning window
  11  `skysync sync status`: the last run of at least one entity failed
  129 130 143  stopped by SIGHUP, SIGINT or SIGTERM (a token call in flight is finished and
               saved first; a sync commits the pages on their way and prints its summary)";

/// A command-line problem found after parsing (e.g. a confirmation that cannot be asked).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An error the command has already shown (a sync's summary says why the run stopped): it still
/// decides the exit code, but [`report`] does not print it a second time.
#[derive(Debug)]
pub struct AlreadyShown(pub anyhow::Error);

impl std::fmt::Display for AlreadyShown {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

impl std::error::Error for AlreadyShown {}

/// The exit code for `err`: the first link of its chain that has a specific meaning decides.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(AlreadyShown(shown)) = cause.downcast_ref::<AlreadyShown>() {
            return code_for(shown);
        }
        if let Some(e) = cause.downcast_ref::<SessionError>() {
            if e.needs_consent() {
                return CONSENT;
            }
            if let SessionError::Token(TokenError::InvalidClient { .. }) = e {
                return CONFIG;
            }
            // `SaveFailed` does not expose its store error as a source.
            if let SessionError::SaveFailed(StoreError::Key(_)) = e {
                return CONFIG;
            }
            // `Token` is transparent too.
            if let SessionError::Token(t) = e
                && token_throttled(t)
            {
                return THROTTLED;
            }
        } else if let Some(BundleError::CodeExpired { .. }) = cause.downcast_ref::<BundleError>() {
            return CONSENT;
        } else if let Some(e) = cause.downcast_ref::<ApiError>() {
            match e {
                ApiError::QuotaExhausted { .. }
                | ApiError::RateLimited { .. }
                | ApiError::BudgetSpent { .. }
                | ApiError::DailyQuotaReached { .. } => {
                    return THROTTLED;
                }
                // `Session` is transparent, so the chain never shows the inner error by itself.
                ApiError::Session(s) if s.needs_consent() => return CONSENT,
                ApiError::Session(SessionError::Token(TokenError::InvalidClient { .. })) => return CONFIG,
                ApiError::Session(SessionError::Token(t)) if token_throttled(t) => return THROTTLED,
                _ => {}
            }
        } else if let Some(e) = cause.downcast_ref::<TokenError>() {
            match e {
                TokenError::ConsentRequired { .. } => return CONSENT,
                // A wrong application id or secret, or the wrong `client_auth`: fix the config.
                TokenError::InvalidClient { .. } => return CONFIG,
                _ => {}
            }
        } else if let Some(StoreError::Key(_)) = cause.downcast_ref::<StoreError>() {
            return CONFIG;
        } else if let Some(StoreError::Busy(_)) = cause.downcast_ref::<StoreError>() {
            return BUSY;
        } else if let Some(StoreError::HandedOver(_)) = cause.downcast_ref::<StoreError>() {
            return CONSENT;
        } else if let Some(crate::sink::SinkError::Busy { .. }) = cause.downcast_ref::<crate::sink::SinkError>() {
            return BUSY;
        } else if cause.downcast_ref::<ConfigError>().is_some() {
            return CONFIG;
        } else if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
    }
    FAILURE
}

/// A 429 from the token endpoint, with or without an OAuth error body.
fn token_throttled(e: &TokenError) -> bool {
    matches!(
        e,
        TokenError::Server { status: 429, .. }
            | TokenError::Unavailable { status: 429, .. }
            | TokenError::Malformed { status: 429, .. }
    )
}

/// Whether the error is only a closed stdout (`skysync token | head -c0`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().filter_map(|c| c.downcast_ref::<std::io::Error>()).any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Prints `error: …` and one `Caused by:` line per cause, like uv.
pub fn report(err: &anyhow::Error) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", with_command(err.as_ref()));
    let mut seen = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        // Transparent wrappers repeat their inner message; print each text once.
        if text.is_empty() || seen.contains(&text) {
            continue;
        }
        let _ = writeln!(stderr, "  Caused by: {}", with_command(cause));
        seen = text;
    }
}

/// The text of `cause` with the command that fixes it. The core's texts name no command
/// (browser users read them too), so the CLI adds its own here.
pub fn with_command(cause: &(dyn std::error::Error + 'static)) -> String {
    let text = cause.to_string();
    let session = cause.downcast_ref::<SessionError>().or(match cause.downcast_ref::<ApiError>() {
        Some(ApiError::Session(s)) => Some(s),
        _ => None,
    });
    let command = match session {
        Some(SessionError::NotLoggedIn) => {
            return "no tokens are stored for this profile; run `skysync login` (or `skysync import`) first".into();
        }
        Some(SessionError::GrantRefused { .. }) => "`skysync login` or `skysync import`",
        Some(
            SessionError::RefreshTokenExpired { .. }
            | SessionError::WrongClient { .. }
            | SessionError::RotationUnsaved { .. }
            | SessionError::RotationLost { .. }
            | SessionError::Token(TokenError::ConsentRequired { .. }),
        ) => "`skysync login`",
        Some(_) => return text,
        None => match (
            cause.downcast_ref::<TokenError>(),
            cause.downcast_ref::<CallbackError>(),
            cause.downcast_ref::<SealError>(),
        ) {
            (Some(TokenError::ConsentRequired { .. }), _, _) | (_, Some(CallbackError::StateMismatch), _) => {
                "`skysync login`"
            }
            (_, _, Some(SealError::WrongRecipient { .. })) => "`skysync import --prepare`",
            _ => return text,
        },
    };
    format!("{text} ({command})")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every error that means "consent again" tells a CLI user which command does it.
    #[test]
    fn consent_errors_name_the_command_that_fixes_them() {
        let body = || skysync_core::token::OAuthErrorBody {
            error: "invalid_grant".into(),
            error_description: None,
            error_uri: None,
        };
        let io = || StoreError::Io("disk full".into());
        let needs_consent = [
            SessionError::NotLoggedIn,
            SessionError::RefreshTokenExpired { expired_at: "2027-01-15T12:00:00Z".into() },
            SessionError::WrongClient { stored: "a".into(), configured: "b".into() },
            SessionError::RotationLost { started_at: "2027-01-15T12:00:00Z".into() },
            SessionError::RotationUnsaved { error: io(), rescue_error: io() },
            SessionError::GrantRefused { refused_at: "2027-01-15T12:00:00Z".into() },
            SessionError::Token(TokenError::ConsentRequired { body: body() }),
        ];
        for e in needs_consent {
            assert!(e.needs_consent());
            assert!(!e.to_string().contains("skysync "), "the core names no command: {e}");
            assert!(with_command(&e).contains("`skysync login`"), "{}", with_command(&e));
            let api = ApiError::Session(e);
            assert!(with_command(&api).contains("`skysync login`"), "{}", with_command(&api));
        }
        let token = TokenError::ConsentRequired { body: body() };
        assert!(with_command(&token).ends_with(" (`skysync login`)"));
        assert!(with_command(&CallbackError::StateMismatch).ends_with(" (`skysync login`)"));
        // Not about consent: left as the core says it.
        assert_eq!(with_command(&SessionError::Cancelled), SessionError::Cancelled.to_string());
    }
}
