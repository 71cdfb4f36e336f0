//! Token-endpoint requests and responses as values (RFC 6749 §4.1.3, §6, §5.2).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::config::{ClientAuth, OAuthConfig};
use crate::http::{HttpRequest, HttpResponse, MAX_TOKEN_RESPONSE_BYTES, Method, redacted_url};
use crate::secret::{AccessToken, AuthorizationCode, PkceVerifier, RefreshToken};

/// What a refresh should do with the refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshMode {
    /// Send `preserve_refresh_token=true`: keep the same refresh token (and its fixed expiry).
    Preserve,
    /// Leave it off: Blackbaud issues a new refresh token and the old one dies at once.
    Rotate,
}

/// Builds the `authorization_code` exchange (with the PKCE verifier when there is one).
pub fn authorization_code_request(
    config: &OAuthConfig,
    code: &AuthorizationCode,
    verifier: Option<&PkceVerifier>,
    redirect_uri: &url::Url,
) -> HttpRequest {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.secret().to_owned()),
        ("redirect_uri", redirect_uri.as_str().to_owned()),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v.secret().to_owned()));
    }
    token_request(config, form)
}

/// Builds a `refresh_token` grant.
pub fn refresh_request(config: &OAuthConfig, refresh_token: &RefreshToken, mode: RefreshMode) -> HttpRequest {
    let mut form =
        vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.secret().to_owned())];
    if mode == RefreshMode::Preserve {
        form.push(("preserve_refresh_token", "true".to_owned()));
    }
    token_request(config, form)
}

fn token_request(config: &OAuthConfig, mut form: Vec<(&'static str, String)>) -> HttpRequest {
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    match (config.client_auth, &config.client_secret) {
        (ClientAuth::Basic, Some(secret)) => {
            // As Blackbaud's samples build it: the pair as is. Blackbaud does not form-decode
            // it, so encoding a secret with '+', '/' or '=' would make it a different secret.
            headers.push(basic_authorization(&config.client_id, secret.secret()));
        }
        (ClientAuth::BasicFormEncoded, Some(secret)) => {
            // RFC 6749 §2.3.1: form-encode each part before joining with ':'.
            let user = form_encode_component(&config.client_id);
            let pass = form_encode_component(secret.secret());
            headers.push(basic_authorization(&user, &pass));
        }
        (ClientAuth::Body, Some(secret)) => {
            form.push(("client_id", config.client_id.clone()));
            form.push(("client_secret", secret.secret().to_owned()));
        }
        // A public client, or a confidential mode without a secret: identify by client_id only.
        _ => form.push(("client_id", config.client_id.clone())),
    }
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    HttpRequest {
        method: Method::Post,
        url: config.endpoints.token.clone(),
        headers,
        body: body.into_bytes(),
        max_response_bytes: MAX_TOKEN_RESPONSE_BYTES,
        follow_redirects: false,
        timeout: Some(Duration::from_secs(60)),
    }
}

fn basic_authorization(user: &str, pass: &str) -> (String, String) {
    ("Authorization".to_owned(), format!("Basic {}", STANDARD.encode(format!("{user}:{pass}"))))
}

fn form_encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The identity and environment fields Blackbaud returns with tokens.
///
/// An empty or blank string counts as absent (some responses carry `"email": ""`), so the
/// displays say "unknown user" rather than nothing, and [`Identity::merge`] keeps a known value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Environment id, e.g. `p-abcdef1234567890ABCDEFG`.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    /// Environment display name.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<String>,
    /// Legal entity id.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub legal_entity_id: Option<String>,
    /// Legal entity name.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub legal_entity_name: Option<String>,
    /// The consenting Blackbaud user's id.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The consenting user's email.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Given name.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Access mode (`Full` or `Limited`).
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Space-delimited scopes.
    #[serde(default, deserialize_with = "blank_is_none", skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Deserializes an optional string, treating `""` and whitespace as absent.
fn blank_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.filter(|s| !s.trim().is_empty()))
}

impl Identity {
    /// `Given Family <email>` or whatever part is known.
    pub fn user_display(&self) -> String {
        let name = [self.given_name.as_deref(), self.family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        match (&self.email, name.is_empty()) {
            (Some(e), false) => format!("{name} <{e}>"),
            (Some(e), true) => e.clone(),
            (None, false) => name,
            (None, true) => self.user_id.clone().unwrap_or_else(|| "unknown user".into()),
        }
    }

    /// "Environment name (id)" or whatever part is known.
    pub fn environment_display(&self) -> String {
        match (&self.environment_name, &self.environment_id) {
            (Some(n), Some(i)) => format!("{n} ({i})"),
            (Some(n), None) => n.clone(),
            (None, Some(i)) => i.clone(),
            (None, None) => "unknown environment".into(),
        }
    }

    /// Fields of `newer` that are present replace ours.
    pub fn merge(&mut self, newer: Identity) {
        macro_rules! take {
            ($($f:ident),*) => { $( if newer.$f.is_some() { self.$f = newer.$f; } )* };
        }
        take!(
            environment_id,
            environment_name,
            legal_entity_id,
            legal_entity_name,
            user_id,
            email,
            given_name,
            family_name,
            mode,
            scope
        );
    }
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The new access token.
    pub access_token: AccessToken,
    /// `token_type` (Blackbaud: always `bearer`).
    pub token_type: String,
    /// Access-token lifetime, if given.
    pub expires_in: Option<Duration>,
    /// A refresh token, if given (a refresh response without one keeps the old token).
    pub refresh_token: Option<RefreshToken>,
    /// Remaining life of the refresh token, if given.
    pub refresh_token_expires_in: Option<Duration>,
    /// Identity and environment fields.
    pub identity: Identity,
}

/// An RFC 6749 §5.2 error body, kept as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    /// The error code, e.g. `invalid_grant`.
    pub error: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Optional documentation link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}

impl std::fmt::Display for OAuthErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// Why a token response could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// `invalid_grant`: the code or refresh token is expired, used, revoked or otherwise dead.
    #[error("the token endpoint rejected the grant ({body}); someone must consent again")]
    ConsentRequired {
        /// The server's error.
        body: OAuthErrorBody,
    },
    /// `invalid_client`: wrong application id or secret, or the wrong authentication method.
    #[error(
        "the token endpoint rejected the application's credentials ({body}); check the application ID and secret, and `client_auth` (Blackbaud expects `basic`, which sends the secret as is)"
    )]
    InvalidClient {
        /// The server's error.
        body: OAuthErrorBody,
    },
    /// Any other RFC 6749 error.
    #[error("the token endpoint returned an error (HTTP {status}): {body}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's error.
        body: OAuthErrorBody,
    },
    /// A 5xx without an OAuth error body: worth retrying.
    #[error("the token endpoint is unavailable (HTTP {status}; {excerpt})")]
    Unavailable {
        /// HTTP status.
        status: u16,
        /// Safe description of the body.
        excerpt: String,
    },
    /// The body was not a usable token response (HTML, wrong content type, bad JSON, missing fields).
    #[error("unexpected response from the token endpoint {url} (HTTP {status}; {excerpt}): {problem}")]
    Malformed {
        /// The endpoint, without its query.
        url: String,
        /// HTTP status.
        status: u16,
        /// Safe description of the body.
        excerpt: String,
        /// What was wrong.
        problem: String,
    },
}

impl TokenError {
    /// Whether retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Unavailable { .. })
            || matches!(self, TokenError::Server { status, .. } if *status >= 500 || *status == 429)
    }
}

#[derive(Deserialize)]
struct RawTokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    refresh_token_expires_in: Option<u64>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_uri: Option<String>,
    #[serde(flatten)]
    identity: Identity,
}

/// Accepts a number, a numeric string or null (servers vary; oauth2-rs #85/#151/#191).
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| D::Error::custom("a negative lifetime")),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) => {
            s.trim().parse().map(Some).map_err(|_| D::Error::custom("a non-numeric lifetime"))
        }
        _ => Err(D::Error::custom("a lifetime that is not a number")),
    }
}

/// Parses a token-endpoint response: strict about what matters, lenient about the rest.
pub fn parse_token_response(url: &url::Url, response: &HttpResponse) -> Result<TokenResponse, TokenError> {
    let malformed = |problem: &str| TokenError::Malformed {
        url: redacted_url(url),
        status: response.status,
        excerpt: response.body_excerpt(),
        problem: problem.to_owned(),
    };
    let parsed: Option<RawTokenResponse> = if response.is_json() || looks_like_json(&response.body) {
        serde_json::from_slice(&response.body).ok()
    } else {
        None
    };

    // An RFC 6749 error, whatever the status (some servers send errors with 200).
    if let Some(raw) = &parsed
        && let Some(error) = raw.error.clone().filter(|e| !e.is_empty())
    {
        let clean = |s: &String| crate::sanitize::server_text(s);
        let body = OAuthErrorBody {
            error: clean(&error),
            error_description: raw.error_description.as_ref().map(clean),
            error_uri: raw.error_uri.as_ref().map(clean),
        };
        return Err(match body.error.as_str() {
            "invalid_grant" => TokenError::ConsentRequired { body },
            "invalid_client" | "unauthorized_client" => TokenError::InvalidClient { body },
            _ => TokenError::Server { status: response.status, body },
        });
    }

    // 5xx, and 429 without an OAuth body (the token endpoint throttled): worth retrying later.
    if response.status >= 500 || response.status == 429 {
        return Err(TokenError::Unavailable { status: response.status, excerpt: response.body_excerpt() });
    }
    if !(200..300).contains(&response.status) {
        return Err(malformed(&format!("HTTP {} without an OAuth error body", response.status)));
    }
    // A complete token response under the wrong Content-Type is still accepted: refusing it
    // would lose a refresh token the server has already rotated. Anything else is an error.
    if !response.is_json() && parsed.as_ref().is_none_or(|raw| raw.access_token.as_deref().is_none_or(str::is_empty)) {
        return Err(malformed("expected Content-Type application/json"));
    }
    let Some(raw) = parsed else {
        return Err(malformed(match serde_json::from_slice::<serde_json::Value>(&response.body) {
            Ok(_) => "a field has the wrong type",
            Err(_) => "the body is not valid JSON",
        }));
    };
    let access_token = raw.access_token.filter(|t| !t.is_empty()).ok_or_else(|| malformed("no access_token"))?;
    let token_type = raw.token_type.unwrap_or_else(|| "bearer".into());
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(malformed(&format!("unsupported token_type {token_type:?}")));
    }
    Ok(TokenResponse {
        access_token: AccessToken::new(access_token),
        token_type,
        expires_in: raw.expires_in.map(Duration::from_secs),
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(RefreshToken::new),
        refresh_token_expires_in: raw.refresh_token_expires_in.map(Duration::from_secs),
        identity: raw.identity,
    })
}

fn looks_like_json(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}
