//! The configuration object JavaScript passes to `new SkyAuth(config)`.

use serde::Deserialize;
use skysync_core::config::{ApiConfig, ClientAuth, Endpoints, OAuthConfig};
use skysync_core::secret::{ClientSecret, SubscriptionKey};
use url::Url;

use crate::error::{ErrorKind, Failure};

/// The `sessionStorage` key prefix when the config does not set one.
pub const DEFAULT_STORAGE_PREFIX: &str = "skysync.";

/// `SkyAuthConfig` in TypeScript. Empty strings count as absent, so form fields can be passed
/// as they are. Unknown fields are an error (a typo must not silently drop a setting).
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebConfig {
    /// The "Application ID".
    pub client_id: String,
    /// The "Application secret" of a confidential application. It is only ever sent to the
    /// token endpoint.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The redirect URI registered with the application.
    pub redirect_uri: String,
    /// The authorization (consent) endpoint; Blackbaud's by default.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// The token endpoint; Blackbaud's by default.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The SKY API base URL; Blackbaud's by default.
    #[serde(default)]
    pub api_url: Option<String>,
    /// `Bb-Api-Subscription-Key`, needed only for `apiGet`.
    #[serde(default)]
    pub subscription_key: Option<String>,
    /// Restricts consent to one environment.
    #[serde(default)]
    pub environment_id: Option<String>,
    /// `"basic"` (default with a secret: HTTP Basic with the secret as is, as Blackbaud expects),
    /// `"basic-form-encoded"` (RFC 6749 §2.3.1), `"body"` or `"none"` (default without one). The
    /// same values and default as the CLI's `client_auth`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Prefix of the `sessionStorage` keys (default `"skysync."`).
    #[serde(default)]
    pub storage_prefix: Option<String>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn http_url(field: &str, value: &str) -> Result<Url, Failure> {
    let url = Url::parse(value)
        .map_err(|e| Failure::new(ErrorKind::Config, format!("{field} is not an absolute URL ({e}): {value:?}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::new(ErrorKind::Config, format!("{field} must be an http(s) URL: {value:?}")));
    }
    if url.fragment().is_some() {
        return Err(Failure::new(ErrorKind::Config, format!("{field} must not contain a #fragment")));
    }
    Ok(url)
}

impl WebConfig {
    /// Parses the JSON form of the configuration object.
    pub fn from_json(text: &str) -> Result<Self, Failure> {
        serde_json::from_str(text).map_err(|e| Failure::new(ErrorKind::Config, format!("invalid configuration: {e}")))
    }

    /// The endpoints, with Blackbaud's where none is given.
    pub fn endpoints(&self) -> Result<Endpoints, Failure> {
        let mut endpoints = Endpoints::default();
        if let Some(u) = present(&self.authorize_url) {
            endpoints.authorize = http_url("authorizeUrl", u)?;
        }
        if let Some(u) = present(&self.token_url) {
            endpoints.token = http_url("tokenUrl", u)?;
        }
        if let Some(u) = present(&self.api_url) {
            endpoints.api = http_url("apiUrl", u)?;
        }
        Ok(endpoints)
    }

    /// The core's OAuth settings.
    pub fn oauth(&self) -> Result<OAuthConfig, Failure> {
        let client_id = self.client_id.trim();
        if client_id.is_empty() {
            return Err(Failure::new(ErrorKind::Config, "clientId (the Application ID) is required"));
        }
        let redirect_uri = http_url("redirectUri", self.redirect_uri.trim())?;
        let secret = present(&self.client_secret).map(ClientSecret::new);
        let mut config = OAuthConfig::new(client_id, secret, redirect_uri).with_endpoints(self.endpoints()?);
        if let Some(auth) = self.client_auth {
            if auth != ClientAuth::None && config.client_secret.is_none() {
                let msg = format!("clientAuth \"{}\" needs a clientSecret", auth.as_str());
                return Err(Failure::new(ErrorKind::Config, msg));
            }
            config.client_auth = auth;
        }
        config.environment_id = present(&self.environment_id).map(str::to_owned);
        Ok(config)
    }

    /// The SKY API settings, when a subscription key is configured.
    pub fn api(&self) -> Result<Option<ApiConfig>, Failure> {
        let Some(key) = present(&self.subscription_key) else { return Ok(None) };
        Ok(Some(ApiConfig { base: self.endpoints()?.api, subscription_key: SubscriptionKey::new(key) }))
    }

    /// The `sessionStorage` key prefix.
    pub fn storage_prefix(&self) -> &str {
        present(&self.storage_prefix).unwrap_or(DEFAULT_STORAGE_PREFIX)
    }
}
