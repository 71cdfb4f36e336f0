//! The authorization request (consent page URL) and the redirect back.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::OAuthConfig;
use crate::host::Entropy;
use crate::pkce::CsrfState;
use crate::secret::{AuthorizationCode, PkceVerifier};

/// A started consent: the URL to open, and what must be kept to finish it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The consent page URL (holds no secret: only the PKCE challenge and the state).
    pub url: Url,
    /// The state to expect back.
    pub state: CsrfState,
    /// The PKCE verifier to send with the code.
    pub verifier: PkceVerifier,
    /// The redirect URI used (the exchange must repeat it exactly).
    pub redirect_uri: Url,
}

/// Builds the consent-page URL with fresh PKCE and state.
pub fn start_authorization(config: &OAuthConfig, entropy: &dyn Entropy) -> PendingAuthorization {
    let verifier = PkceVerifier::generate(entropy);
    let state = CsrfState::generate(entropy);
    let mut url = config.endpoints.authorize.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &config.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", config.redirect_uri.as_str())
            .append_pair("state", state.as_str())
            .append_pair("code_challenge", &verifier.challenge())
            .append_pair("code_challenge_method", "S256");
        if let Some(env) = &config.environment_id {
            q.append_pair("environment_id", env);
        }
    }
    PendingAuthorization { url, state, verifier, redirect_uri: config.redirect_uri.clone() }
}

/// Why the redirect back from the consent page did not yield a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The user (or Blackbaud) declined.
    #[error("consent was not given ({error}){}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Denied {
        /// The `error` parameter, e.g. `access_denied`.
        error: String,
        /// Blackbaud's `error_message` / `error_description`.
        message: Option<String>,
    },
    /// No `code` parameter.
    #[error("the redirect carries no authorization code; paste the whole URL the browser was sent to")]
    MissingCode,
    /// `state` absent or different: possibly a forged or stale redirect.
    #[error(
        "the redirect's state does not match this login attempt (a stale or forged redirect); start the consent again"
    )]
    StateMismatch,
    /// Not a URL or query string.
    #[error("could not read the redirect: {0}")]
    Unparseable(String),
}

/// Reads the redirect: a full URL, a `?query`, a bare query, or (when `allow_bare_code`) just the
/// code itself. `expected` is the state that was sent; a bare code cannot be checked against it,
/// so callers allow that only when the user pasted it by hand.
pub fn parse_callback(
    input: &str,
    expected: &CsrfState,
    allow_bare_code: bool,
) -> Result<AuthorizationCode, CallbackError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(CallbackError::MissingCode);
    }
    let query: String = if let Ok(url) = Url::parse(input) {
        url.query().unwrap_or("").to_owned()
    } else if let Some(q) = input.strip_prefix('?') {
        q.to_owned()
    } else if input.contains('=') {
        input.to_owned()
    } else if allow_bare_code && input.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) {
        return Ok(AuthorizationCode::new(input));
    } else {
        return Err(CallbackError::Unparseable("expected the redirected URL or its query string".into()));
    };
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut message = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" => code = Some(v.into_owned()),
            "state" => state = Some(v.into_owned()),
            "error" => error = Some(crate::sanitize::server_text(&v)),
            "error_message" | "error_description" => message = Some(crate::sanitize::server_text(&v)),
            _ => {}
        }
    }
    // The state is checked first even for errors: an attacker must not be able to show messages.
    if !state.as_deref().is_some_and(|s| expected.matches(s)) {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(CallbackError::Denied { error, message });
    }
    code.filter(|c| !c.is_empty()).map(AuthorizationCode::new).ok_or(CallbackError::MissingCode)
}
