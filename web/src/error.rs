//! The one place where failures become JavaScript errors: every kind has a stable `Error.name`
//! that embedding code can switch on (`err.name === "ConsentRequiredError"`); the message is for
//! people and may change.

use skysync_core::api::ApiError;
use skysync_core::authorize::CallbackError;
use skysync_core::bundle::BundleError;
use skysync_core::bundle_seal::SealError;
use skysync_core::http::TransportError;
use skysync_core::session::SessionError;
use skysync_core::store::StoreError;
use skysync_core::token::TokenError;
use skysync_core::token_set::NoRefreshToken;

/// Every kind of failure the bindings report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration object is incomplete or invalid, or a call needs a setting it lacks.
    Config,
    /// `sessionStorage` is unavailable or holds unreadable data.
    Storage,
    /// `handleRedirect` was called in a tab where `authorizeUrl` was never called (or the
    /// redirect was already handled).
    NoPendingAuthorization,
    /// The redirect's `state` does not match: stale or forged.
    StateMismatch,
    /// The user (or Blackbaud) declined consent.
    ConsentDenied,
    /// The redirect carries no code or cannot be read.
    InvalidRedirect,
    /// `invalid_grant`, or the refresh token expired: someone must consent again.
    ConsentRequired,
    /// `invalid_client`: wrong application id or secret.
    InvalidClient,
    /// The token endpoint could not be reached from the browser (CORS, network, CSP). After a
    /// redirect, `exportBundle()` then returns an authorization-code bundle.
    TokenEndpointUnreachable,
    /// The token endpoint answered with an error or something that is not a token response.
    TokenEndpoint,
    /// The token response has no refresh token (a public application).
    NoRefreshToken,
    /// No tokens yet: consent first (or restore a bundle).
    NotLoggedIn,
    /// The SKY API refused the subscription key.
    SubscriptionKey,
    /// The SKY API refused a freshly refreshed access token.
    Unauthorized,
    /// 429s outlasted the retry budget.
    RateLimited,
    /// The daily call quota is used up.
    QuotaExhausted,
    /// The SKY API could not be reached, or kept failing with 5xx.
    ApiUnavailable,
    /// Any other SKY API failure (4xx, a malformed response).
    Api,
    /// A token bundle that cannot be used.
    Bundle,
    /// A rotation's new refresh token was lost: its answer never arrived, or the store could not
    /// save it. The stored refresh token no longer works.
    RotationLost,
    /// A sync bookmark that `SkySync` did not hand out (or one of another entity).
    Bookmark,
}

impl ErrorKind {
    /// Every kind, for documentation and tests.
    pub const ALL: [ErrorKind; 21] = [
        ErrorKind::Config,
        ErrorKind::Storage,
        ErrorKind::NoPendingAuthorization,
        ErrorKind::StateMismatch,
        ErrorKind::ConsentDenied,
        ErrorKind::InvalidRedirect,
        ErrorKind::ConsentRequired,
        ErrorKind::InvalidClient,
        ErrorKind::TokenEndpointUnreachable,
        ErrorKind::TokenEndpoint,
        ErrorKind::NoRefreshToken,
        ErrorKind::NotLoggedIn,
        ErrorKind::SubscriptionKey,
        ErrorKind::Unauthorized,
        ErrorKind::RateLimited,
        ErrorKind::QuotaExhausted,
        ErrorKind::ApiUnavailable,
        ErrorKind::Api,
        ErrorKind::Bundle,
        ErrorKind::RotationLost,
        ErrorKind::Bookmark,
    ];

    /// The JavaScript `Error.name`. Stable: part of the public API.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Config => "ConfigError",
            ErrorKind::Storage => "StorageError",
            ErrorKind::NoPendingAuthorization => "NoPendingAuthorizationError",
            ErrorKind::StateMismatch => "StateMismatchError",
            ErrorKind::ConsentDenied => "ConsentDeniedError",
            ErrorKind::InvalidRedirect => "InvalidRedirectError",
            ErrorKind::ConsentRequired => "ConsentRequiredError",
            ErrorKind::InvalidClient => "InvalidClientError",
            ErrorKind::TokenEndpointUnreachable => "TokenEndpointUnreachableError",
            ErrorKind::TokenEndpoint => "TokenEndpointError",
            ErrorKind::NoRefreshToken => "NoRefreshTokenError",
            ErrorKind::NotLoggedIn => "NotLoggedInError",
            ErrorKind::SubscriptionKey => "SubscriptionKeyError",
            ErrorKind::Unauthorized => "UnauthorizedError",
            ErrorKind::RateLimited => "RateLimitedError",
            ErrorKind::QuotaExhausted => "QuotaExhaustedError",
            ErrorKind::ApiUnavailable => "ApiUnavailableError",
            ErrorKind::Api => "ApiError",
            ErrorKind::Bundle => "BundleError",
            ErrorKind::RotationLost => "RotationLostError",
            ErrorKind::Bookmark => "BookmarkError",
        }
    }
}

/// A failure on its way to JavaScript: a kind and a message for people (never a secret; the
/// core's error messages are written to be safe to show).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Why, in words.
    pub message: String,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The JavaScript `Error.name`.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name(), self.message)
    }
}

fn kind_of_callback(e: &CallbackError) -> ErrorKind {
    match e {
        CallbackError::Denied { .. } => ErrorKind::ConsentDenied,
        CallbackError::StateMismatch => ErrorKind::StateMismatch,
        _ => ErrorKind::InvalidRedirect,
    }
}

fn kind_of_token(e: &TokenError) -> ErrorKind {
    match e {
        TokenError::ConsentRequired { .. } => ErrorKind::ConsentRequired,
        TokenError::InvalidClient { .. } => ErrorKind::InvalidClient,
        _ => ErrorKind::TokenEndpoint,
    }
}

fn kind_of_session(e: &SessionError) -> ErrorKind {
    match e {
        SessionError::NotLoggedIn => ErrorKind::NotLoggedIn,
        SessionError::RefreshTokenExpired { .. } | SessionError::GrantRefused { .. } => ErrorKind::ConsentRequired,
        SessionError::RotationLost { .. }
        | SessionError::RotationRescued { .. }
        | SessionError::RotationUnsaved { .. } => ErrorKind::RotationLost,
        SessionError::WrongClient { .. } => ErrorKind::Config,
        SessionError::Token(t) => kind_of_token(t),
        SessionError::Transport(_) => ErrorKind::TokenEndpointUnreachable,
        SessionError::Store(_) | SessionError::SaveFailed(_) | SessionError::StoreNotWritable(_) => ErrorKind::Storage,
        _ => ErrorKind::TokenEndpoint,
    }
}

fn kind_of_api(e: &ApiError) -> ErrorKind {
    match e {
        ApiError::Session(s) => kind_of_session(s),
        ApiError::SubscriptionKey { .. } => ErrorKind::SubscriptionKey,
        ApiError::Unauthorized { .. } => ErrorKind::Unauthorized,
        ApiError::QuotaExhausted { .. } => ErrorKind::QuotaExhausted,
        ApiError::RateLimited { .. } => ErrorKind::RateLimited,
        ApiError::Unavailable { .. } | ApiError::Transport(_) => ErrorKind::ApiUnavailable,
        ApiError::ForeignUrl(_) => ErrorKind::Config,
        _ => ErrorKind::Api,
    }
}

macro_rules! failure_from {
    ($($ty:ty => $kind:expr),* $(,)?) => {$(
        impl From<$ty> for Failure {
            fn from(e: $ty) -> Self {
                #[allow(clippy::redundant_closure_call)]
                let kind = ($kind)(&e);
                Failure::new(kind, e.to_string())
            }
        }
    )*};
}

/// The core's words, except where they name the CLI's token file: an app's store has no rescue
/// file, but the `SkyAuth` object still holds the new tokens (`exportBundle()`).
fn message_of_session(e: &SessionError) -> String {
    match e {
        SessionError::RotationUnsaved { error, .. } | SessionError::RotationRescued { error, .. } => format!(
            "the refresh token was rotated, but the new one could not be saved in the token store: {error}. The \
             stored refresh token no longer works. Until this SkyAuth object is gone, exportBundle() returns the \
             new tokens: keep them (SkyAuth.storeRecord turns the bundle into a store record), or consent again"
        ),
        e => e.to_string(),
    }
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        Failure::new(kind_of_session(&e), message_of_session(&e))
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        let message = match &e {
            ApiError::Session(s) => message_of_session(s),
            e => e.to_string(),
        };
        Failure::new(kind_of_api(&e), message)
    }
}

failure_from! {
    CallbackError => kind_of_callback,
    TokenError => kind_of_token,
    BundleError => |_: &BundleError| ErrorKind::Bundle,
    SealError => |_: &SealError| ErrorKind::Bundle,
    StoreError => |_: &StoreError| ErrorKind::Storage,
    NoRefreshToken => |_: &NoRefreshToken| ErrorKind::NoRefreshToken,
    TransportError => |_: &TransportError| ErrorKind::TokenEndpointUnreachable,
}

#[cfg(target_arch = "wasm32")]
impl From<Failure> for wasm_bindgen::JsValue {
    fn from(f: Failure) -> Self {
        let error = js_sys::Error::new(&f.message);
        error.set_name(f.name());
        error.into()
    }
}
