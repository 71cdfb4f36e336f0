//! What the bindings show and export after a consent: the token summary handed to JavaScript,
//! the code kept when the browser cannot reach the token endpoint, and the bundle to export.

use serde::Serialize;
use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_core::secret::{AuthorizationCode, PkceVerifier};
use skysync_core::token_set::TokenSet;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::error::{ErrorKind, Failure};

/// Blackbaud's authorization codes live 5 minutes (the core's code-bundle lifetime).
pub const CODE_LIFETIME: time::Duration = skysync_core::bundle::CODE_BUNDLE_LIFETIME;

/// `TokenInfo` in TypeScript: who consented to which environment, and until when the tokens
/// last. The tokens themselves are only included when asked for.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The application.
    pub client_id: String,
    /// "Environment name (id)".
    pub environment: String,
    /// `Given Family <email>`.
    pub user: String,
    /// Environment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    /// Environment name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<String>,
    /// Legal entity name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_entity_name: Option<String>,
    /// The user's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `Full` or `Limited`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// When the access token expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<String>,
    /// When the refresh token expires (RFC 3339).
    pub refresh_expires_at: String,
    /// When consent was given (RFC 3339).
    pub consented_at: String,
    /// The access token, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The refresh token, only when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl TokenInfo {
    /// The summary of `tokens`; the secrets only with `include_secrets`.
    pub fn of(tokens: &TokenSet, include_secrets: bool) -> Self {
        let id = &tokens.identity;
        Self {
            client_id: tokens.client_id.clone(),
            environment: id.environment_display(),
            user: id.user_display(),
            environment_id: id.environment_id.clone(),
            environment_name: id.environment_name.clone(),
            legal_entity_name: id.legal_entity_name.clone(),
            email: id.email.clone(),
            mode: id.mode.clone(),
            access_expires_at: tokens.access_expires_at.map(rfc3339),
            refresh_expires_at: rfc3339(tokens.refresh_expires_at),
            consented_at: rfc3339(tokens.consented_at),
            access_token: include_secrets
                .then(|| tokens.access_token.as_ref().map(|t| t.secret().to_owned()))
                .flatten(),
            refresh_token: include_secrets.then(|| tokens.refresh_token.secret().to_owned()),
        }
    }
}

/// A code that came back on the redirect but could not be exchanged in the browser.
#[derive(Debug, Clone)]
pub struct ReceivedCode {
    /// The application.
    pub client_id: String,
    /// The one-time code.
    pub code: AuthorizationCode,
    /// Its PKCE verifier.
    pub verifier: PkceVerifier,
    /// The redirect URI the consent used.
    pub redirect_uri: Url,
    /// When it arrived.
    pub obtained_at: OffsetDateTime,
}

impl ReceivedCode {
    /// When the code stops being exchangeable.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.obtained_at + CODE_LIFETIME
    }
}

/// The bundle to export: the token set when the exchange worked, else the received code.
pub fn bundle_for(
    tokens: Option<TokenSet>,
    code: Option<&ReceivedCode>,
    now: OffsetDateTime,
) -> Result<TokenBundle, Failure> {
    let content = match (tokens, code) {
        (Some(tokens), _) => BundleContent::RefreshToken { tokens: Box::new(tokens) },
        (None, Some(c)) => BundleContent::AuthorizationCode {
            client_id: c.client_id.clone(),
            code: c.code.clone(),
            code_verifier: c.verifier.clone(),
            redirect_uri: c.redirect_uri.clone(),
            obtained_at: c.obtained_at,
        },
        (None, None) => {
            return Err(Failure::new(
                ErrorKind::NotLoggedIn,
                "nothing to export yet: authorize first (or restore a bundle)",
            ));
        }
    };
    Ok(TokenBundle::new(content, now))
}

/// Whether `url` is a redirect back from the consent page (it carries `state` and a `code` or an
/// `error`), as opposed to a fresh visit.
pub fn is_redirect(url: &str) -> bool {
    let Ok(url) = Url::parse(url) else { return false };
    let names: Vec<_> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let has = |n: &str| names.iter().any(|k| k == n);
    has("state") && (has("code") || has("error"))
}

/// The RFC 3339 text of an instant, for JavaScript.
pub fn to_rfc3339(t: OffsetDateTime) -> String {
    rfc3339(t)
}
