//! The token bundle: how a consent made in a browser reaches a headless machine.
//!
//! A bundle is a small versioned JSON document. It carries either a refresh token with its
//! metadata (the browser could reach the token endpoint), or an authorization code with its PKCE
//! verifier and redirect URI (it could not; the code must be exchanged within 5 minutes).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::secret::{AuthorizationCode, PkceVerifier};
use crate::token_set::TokenSet;

/// The `format` marker every bundle carries.
pub const BUNDLE_FORMAT: &str = "skysync-token-bundle";
/// The bundle version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;
/// Largest bundle accepted.
pub const MAX_BUNDLE_BYTES: usize = 64 * 1024;
/// How long a code bundle can be exchanged: Blackbaud's authorization codes live 5 minutes from
/// when they are issued (the page counts from when the redirect arrived).
pub const CODE_BUNDLE_LIFETIME: time::Duration = time::Duration::minutes(5);

/// What a bundle carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BundleContent {
    /// A token set obtained in the browser.
    RefreshToken {
        /// The tokens and their metadata.
        tokens: Box<TokenSet>,
    },
    /// An authorization code to exchange on the importing machine.
    AuthorizationCode {
        /// The application the code was issued to.
        client_id: String,
        /// The one-time code.
        code: AuthorizationCode,
        /// Its PKCE verifier.
        code_verifier: PkceVerifier,
        /// The redirect URI the consent used (the exchange must repeat it).
        redirect_uri: Url,
        /// When the code was received; Blackbaud's codes live 5 minutes.
        #[serde(with = "time::serde::rfc3339")]
        obtained_at: OffsetDateTime,
    },
}

/// A versioned bundle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Always [`BUNDLE_VERSION`] for bundles this build writes.
    pub version: u32,
    /// When the bundle was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The payload.
    #[serde(flatten)]
    pub content: BundleContent,
}

/// Why a bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Too big to be a bundle.
    #[error("the bundle is larger than {MAX_BUNDLE_BYTES} bytes; is this the file the consent page downloaded?")]
    TooLarge,
    /// Not JSON, or not a bundle.
    #[error("not a skysync token bundle: {0}")]
    Malformed(String),
    /// Made by a newer skysync.
    #[error(
        "token bundle version {0} is not supported by this skysync (it reads version {BUNDLE_VERSION}); upgrade skysync"
    )]
    UnsupportedVersion(u32),
    /// Issued to another application.
    #[error("the bundle was made for application {bundle}, but the configured client_id is {configured}")]
    WrongClient {
        /// client_id in the bundle.
        bundle: String,
        /// configured client_id.
        configured: String,
    },
    /// An authorization code older than Blackbaud's 5 minutes.
    #[error(
        "the authorization code in the bundle was obtained {age_secs} s ago and has expired (codes live 5 minutes); consent again and import the new bundle at once"
    )]
    CodeExpired {
        /// Age of the code.
        age_secs: i64,
    },
}

impl TokenBundle {
    /// A bundle carrying `content`, made at `now`.
    pub fn new(content: BundleContent, now: OffsetDateTime) -> Self {
        Self { format: BUNDLE_FORMAT.to_owned(), version: BUNDLE_VERSION, created_at: now, content }
    }

    /// The JSON text (pretty, for people who open the file).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("bundles serialize")
    }

    /// Parses and checks a bundle's envelope.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(format!("invalid JSON ({e})")))?;
        let obj = value.as_object().ok_or_else(|| BundleError::Malformed("expected a JSON object".into()))?;
        if obj.get("format").and_then(|f| f.as_str()) != Some(BUNDLE_FORMAT) {
            return Err(BundleError::Malformed(format!("missing \"format\": \"{BUNDLE_FORMAT}\"")));
        }
        let version = obj
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| BundleError::Malformed("missing numeric \"version\"".into()))?;
        if version != u64::from(BUNDLE_VERSION) {
            return Err(BundleError::UnsupportedVersion(u32::try_from(version).unwrap_or(u32::MAX)));
        }
        serde_json::from_value(value).map_err(|e| BundleError::Malformed(crate::secret::redact_quoted(&e.to_string())))
    }

    /// The application the bundle belongs to.
    pub fn client_id(&self) -> &str {
        match &self.content {
            BundleContent::RefreshToken { tokens } => &tokens.client_id,
            BundleContent::AuthorizationCode { client_id, .. } => client_id,
        }
    }

    /// Checks the bundle against the configured application and, for codes, their age.
    pub fn validate(&self, configured_client_id: &str, now: OffsetDateTime) -> Result<(), BundleError> {
        if self.client_id() != configured_client_id {
            return Err(BundleError::WrongClient {
                bundle: self.client_id().to_owned(),
                configured: configured_client_id.to_owned(),
            });
        }
        if let BundleContent::AuthorizationCode { obtained_at, .. } = &self.content {
            let age = (now - *obtained_at).whole_seconds();
            if age > CODE_BUNDLE_LIFETIME.whole_seconds() {
                return Err(BundleError::CodeExpired { age_secs: age });
            }
        }
        Ok(())
    }
}
