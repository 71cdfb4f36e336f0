//! Stored tokens with absolute instants, and the policy that decides when to refresh or rotate.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::secret::{AccessToken, RefreshToken};
use crate::token::{Identity, TokenResponse};

/// Blackbaud's refresh-token life when a response does not say.
pub const DEFAULT_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Blackbaud's access-token life when a response does not say.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Everything skysync keeps about one consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    /// The application the tokens belong to.
    pub client_id: String,
    /// The current access token, if one was issued (an imported bundle may carry none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    /// When the access token expires.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<OffsetDateTime>,
    /// The newest refresh token. Losing it means consenting again.
    pub refresh_token: RefreshToken,
    /// When the refresh token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub refresh_expires_at: OffsetDateTime,
    /// When this refresh token was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub refresh_obtained_at: OffsetDateTime,
    /// When a person last consented.
    #[serde(with = "time::serde::rfc3339")]
    pub consented_at: OffsetDateTime,
    /// When the last successful refresh happened.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_refreshed_at: Option<OffsetDateTime>,
    /// When the refresh token was last rotated (replaced by a refresh without preserve).
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub last_rotated_at: Option<OffsetDateTime>,
    /// Who consented, to which environment.
    #[serde(default)]
    pub identity: Identity,
    /// When a rotation was sent that got no response at all (the connection dropped): its outcome
    /// is unknown, and Blackbaud may have replaced the stored refresh token. Cleared by the saved
    /// result of any successful refresh.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub rotation_started_at: Option<OffsetDateTime>,
    /// When the token endpoint refused the stored refresh token (`invalid_grant`): the grant is
    /// dead, so no cached access token is handed out until a new consent or import replaces the
    /// whole token set.
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    pub grant_refused_at: Option<OffsetDateTime>,
}

/// `now + d`, saturating: a server's absurd lifetime must not panic before new tokens are saved.
fn later(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc())
}

/// A token response without a refresh token cannot start a token set.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the token response has no refresh_token; register the application as a confidential app (with a secret) so Blackbaud issues refresh tokens"
)]
pub struct NoRefreshToken;

impl TokenSet {
    /// A token set from a first exchange (authorization code) at `now`.
    pub fn from_exchange(
        client_id: &str,
        response: TokenResponse,
        now: OffsetDateTime,
    ) -> Result<Self, NoRefreshToken> {
        let refresh_token = response.refresh_token.ok_or(NoRefreshToken)?;
        Ok(Self {
            client_id: client_id.to_owned(),
            access_expires_at: Some(later(now, response.expires_in.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME))),
            access_token: Some(response.access_token),
            refresh_token,
            refresh_expires_at: later(now, response.refresh_token_expires_in.unwrap_or(DEFAULT_REFRESH_TOKEN_LIFETIME)),
            refresh_obtained_at: now,
            consented_at: now,
            last_refreshed_at: None,
            last_rotated_at: None,
            identity: response.identity,
            rotation_started_at: None,
            grant_refused_at: None,
        })
    }

    /// The token set after a successful refresh at `now`.
    ///
    /// A response without `refresh_token` keeps the old one. A new refresh token (a rotation)
    /// expires after the response's `refresh_token_expires_in`, else 365 days. A kept one (sent
    /// back unchanged, or not sent) keeps its expiry unless the response reports an earlier one:
    /// Blackbaud does not document what a preserving refresh reports, and a reported fresh
    /// lifetime must not move the stored expiry later, or the renewal window would never open
    /// and the token would die on its original date without warning.
    pub fn after_refresh(&self, response: TokenResponse, now: OffsetDateTime) -> Self {
        let mut next = self.clone();
        let rotated = match &response.refresh_token {
            Some(new) => !new.ct_eq(&self.refresh_token),
            None => false,
        };
        if let Some(new) = response.refresh_token {
            next.refresh_token = new;
        }
        if rotated {
            next.refresh_obtained_at = now;
            next.last_rotated_at = Some(now);
        }
        let reported = response.refresh_token_expires_in.map(|left| later(now, left));
        next.refresh_expires_at = if rotated {
            reported.unwrap_or_else(|| later(now, DEFAULT_REFRESH_TOKEN_LIFETIME))
        } else {
            reported.map_or(self.refresh_expires_at, |r| r.min(self.refresh_expires_at))
        };
        next.access_token = Some(response.access_token);
        next.access_expires_at = Some(later(now, response.expires_in.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME)));
        next.last_refreshed_at = Some(now);
        next.rotation_started_at = None;
        next.identity.merge(response.identity);
        next
    }

    /// The access token if it stays valid for at least `skew` after `now`, where `skew` is
    /// capped by [`Self::access_skew`].
    pub fn usable_access_token(&self, now: OffsetDateTime, skew: Duration) -> Option<&AccessToken> {
        let skew = self.access_skew(skew);
        match (&self.access_token, self.access_expires_at) {
            (Some(t), Some(exp)) if exp - skew > now => Some(t),
            _ => None,
        }
    }

    /// `skew`, but at most a quarter of the access token's lifetime, so a freshly issued token is
    /// never already due: with 5-minute tokens and the default 5-minute skew, every call would
    /// refresh.
    pub fn access_skew(&self, skew: Duration) -> Duration {
        let Some(expires) = self.access_expires_at else { return skew };
        let lifetime = expires - self.access_issued_at();
        if lifetime.is_positive() { skew.min(lifetime.unsigned_abs() / 4) } else { Duration::ZERO }
    }

    /// When the current access token was issued: by the last refresh, else by the consent's code
    /// exchange (both set the access token and its expiry together).
    fn access_issued_at(&self) -> OffsetDateTime {
        self.last_refreshed_at.unwrap_or(self.consented_at)
    }

    /// Whether the refresh token came with the current access token (from the consent or the
    /// last refresh), rather than from an earlier call.
    fn refresh_issued_with_access_token(&self) -> bool {
        self.last_refreshed_at.is_none_or(|at| self.refresh_obtained_at >= at)
    }

    /// Time left on the refresh token (zero when expired).
    pub fn refresh_time_left(&self, now: OffsetDateTime) -> Duration {
        let left = self.refresh_expires_at - now;
        if left.is_positive() { left.unsigned_abs() } else { Duration::ZERO }
    }
}

/// When to refresh and when to rotate. All windows are configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalPolicy {
    /// Refresh the access token when less than this remains (default 5 minutes), but never
    /// earlier than three quarters into its lifetime ([`TokenSet::access_skew`]).
    #[serde(with = "secs")]
    pub access_skew: Duration,
    /// Rotate the refresh token when less than this remains (default 60 days).
    #[serde(with = "secs")]
    pub renewal_window: Duration,
    /// Warn when less than this remains (default 30 days).
    #[serde(with = "secs")]
    pub warn_window: Duration,
}

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            access_skew: Duration::from_secs(5 * 60),
            renewal_window: Duration::from_secs(60 * 24 * 3600),
            warn_window: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What a caller must do before using the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The access token is good.
    Nothing,
    /// Refresh, keeping the refresh token.
    Refresh,
    /// Refresh without preserve, so Blackbaud issues a new refresh token with a full lifetime.
    Rotate,
    /// The refresh token has expired: a person must consent again.
    Consent,
}

/// How healthy a token set is, for `status` and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Nothing to do.
    Healthy,
    /// The refresh token expires within the warning window.
    Warning,
    /// The refresh token has expired.
    Expired,
}

impl RenewalPolicy {
    /// What `tokens` need at `now`: the one renewal rule, for the session and for `status`.
    ///
    /// Inside the renewal window the refresh token is rotated, except that one issued together
    /// with the access token still in use is not rotated again before that access token is due:
    /// otherwise a refresh-token lifetime no longer than the window would rotate on every call.
    pub fn need(&self, tokens: &TokenSet, now: OffsetDateTime) -> Need {
        let left = tokens.refresh_time_left(now);
        let access_usable = tokens.usable_access_token(now, self.access_skew).is_some();
        if left.is_zero() {
            Need::Consent
        } else if left < self.renewal_window && !(access_usable && tokens.refresh_issued_with_access_token()) {
            Need::Rotate
        } else if !access_usable {
            Need::Refresh
        } else {
            Need::Nothing
        }
    }

    /// Health of `tokens` at `now`.
    pub fn health(&self, tokens: &TokenSet, now: OffsetDateTime) -> Health {
        let left = tokens.refresh_time_left(now);
        if left.is_zero() {
            Health::Expired
        } else if left < self.warn_window {
            Health::Warning
        } else {
            Health::Healthy
        }
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}
