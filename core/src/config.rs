//! The application's OAuth settings and Blackbaud's endpoints.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::secret::{ClientSecret, SubscriptionKey};

/// Blackbaud's authorization endpoint.
pub const BLACKBAUD_AUTHORIZE_URL: &str = "https://app.blackbaud.com/oauth/authorize";
/// Blackbaud's token endpoint.
pub const BLACKBAUD_TOKEN_URL: &str = "https://oauth2.sky.blackbaud.com/token";
/// Blackbaud's SKY API base URL.
pub const BLACKBAUD_API_URL: &str = "https://api.sky.blackbaud.com/";
/// The redirect URI skysync registers for its loopback listener by default.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:8321/callback";

/// Where the OAuth and API calls go. Blackbaud's by default; tests and the simulator replace them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// The authorization (consent) page.
    pub authorize: Url,
    /// The token endpoint.
    pub token: Url,
    /// The SKY API base URL.
    pub api: Url,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            authorize: Url::parse(BLACKBAUD_AUTHORIZE_URL).expect("valid constant"),
            token: Url::parse(BLACKBAUD_TOKEN_URL).expect("valid constant"),
            api: Url::parse(BLACKBAUD_API_URL).expect("valid constant"),
        }
    }
}

/// How the client authenticates at the token endpoint. Serialized as `basic`,
/// `basic-form-encoded`, `body` and `none` (the CLI's `client_auth` and the web `clientAuth`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)` with both parts as they are:
    /// Blackbaud's preferred way, exactly as its samples build it. Blackbaud's secrets contain
    /// `+`, `/` and `=`, which it does not form-decode.
    #[default]
    Basic,
    /// `Authorization: Basic` with each part form-encoded first, as RFC 6749 §2.3.1 describes,
    /// for servers that form-decode Basic credentials (Blackbaud does not).
    BasicFormEncoded,
    /// `client_id` and `client_secret` as form fields.
    Body,
    /// A public PKCE client: `client_id` in the body, no secret.
    None,
}

impl ClientAuth {
    /// Every value, in the order the docs list them.
    pub const ALL: [ClientAuth; 4] =
        [ClientAuth::Basic, ClientAuth::BasicFormEncoded, ClientAuth::Body, ClientAuth::None];

    /// The configuration spelling (`basic-form-encoded`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::BasicFormEncoded => "basic-form-encoded",
            ClientAuth::Body => "body",
            ClientAuth::None => "none",
        }
    }

    /// Parses the configuration spelling, ignoring ASCII case and surrounding blanks.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }
}

/// Everything the OAuth engine needs to know about the registered application.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The "Application ID".
    pub client_id: String,
    /// The "Application secret"; absent for public PKCE clients.
    pub client_secret: Option<ClientSecret>,
    /// The redirect URI registered with the application.
    pub redirect_uri: Url,
    /// Endpoints to talk to.
    pub endpoints: Endpoints,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Optionally restricts consent to one Blackbaud environment.
    pub environment_id: Option<String>,
}

impl OAuthConfig {
    /// A confidential client using Blackbaud's endpoints and Basic authentication.
    pub fn new(client_id: impl Into<String>, client_secret: Option<ClientSecret>, redirect_uri: Url) -> Self {
        let client_auth = if client_secret.is_some() { ClientAuth::Basic } else { ClientAuth::None };
        Self {
            client_id: client_id.into(),
            client_secret,
            redirect_uri,
            endpoints: Endpoints::default(),
            client_auth,
            environment_id: None,
        }
    }

    /// Replaces the endpoints.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }
}

/// Settings for SKY API data calls.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The SKY API base URL.
    pub base: Url,
    /// The `Bb-Api-Subscription-Key`.
    pub subscription_key: SubscriptionKey,
}
