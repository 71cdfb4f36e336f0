//! The code exchange: an authorization code (with its PKCE verifier) for a new token set. Written
//! once for every host: the CLI's `login`, its import of a code bundle, and the browser page.
//!
//! Also the rule for letting new tokens replace stored ones ([`TokenSet::may_replace`]).

use time::OffsetDateTime;
use url::Url;

use crate::config::OAuthConfig;
use crate::host::Clock;
use crate::http::{HttpClient, TransportError};
use crate::secret::{AuthorizationCode, PkceVerifier};
use crate::token::{TokenError, authorization_code_request, parse_token_response};
use crate::token_set::{NoRefreshToken, TokenSet};

/// Why a code exchange gave no tokens.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExchangeError {
    /// No answer from the token endpoint: the code may or may not have been used. (In a browser,
    /// usually an endpoint that does not allow cross-origin requests.)
    #[error("could not reach the token endpoint: {0}")]
    Unreachable(#[from] TransportError),
    /// The token endpoint refused the code, or answered with something unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The answer had no refresh token.
    #[error(transparent)]
    NoRefreshToken(#[from] NoRefreshToken),
}

/// Exchanges `code` (from a consent whose redirect went to `redirect_uri`) at the token endpoint.
/// The token set's instants are taken from `clock` when the answer arrives.
pub async fn exchange_code(
    http: &dyn HttpClient,
    clock: &dyn Clock,
    oauth: &OAuthConfig,
    code: &AuthorizationCode,
    verifier: Option<&PkceVerifier>,
    redirect_uri: &Url,
) -> Result<TokenSet, ExchangeError> {
    let request = authorization_code_request(oauth, code, verifier, redirect_uri);
    let response = http.execute(request.clone()).await?;
    let parsed = parse_token_response(&request.url, &response)?;
    Ok(TokenSet::from_exchange(&oauth.client_id, parsed, clock.now())?)
}

impl TokenSet {
    /// Whether `new` may replace these (stored) tokens at `now` without anyone saying so: not
    /// when these still work and belong to another environment, whose consent would be lost with
    /// the next save. Tokens whose environment is unknown may always be replaced.
    pub fn may_replace(&self, new: &TokenSet, now: OffsetDateTime) -> bool {
        let live = self.refresh_expires_at > now;
        let (old, new) = (&self.identity.environment_id, &new.identity.environment_id);
        let other_environment = old.is_some() && new.is_some() && old != new;
        !(live && other_environment)
    }
}
