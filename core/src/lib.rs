//! skysync-core: the platform-neutral heart of skysync.
//!
//! Blackbaud's SKY API has no client-credentials grant: a person consents once (authorization
//! code + PKCE) and a refresh token keeps access alive afterwards. This crate holds every decision
//! about that, as values in and values out: PKCE and `state`, the consent URL and its redirect,
//! token requests and responses, token lifetimes and the renewal policy, the token bundle that
//! carries a consent from a browser to a server, SKY API error handling, and list paging for the
//! incremental sync. Time, randomness and HTTP are injected ([`host`](mod@host), [`http`]); there is no
//! runtime and no file system here, and the crate builds for `wasm32-unknown-unknown`.
#![warn(missing_docs)]

pub mod api;
pub mod authorize;
pub mod bundle;
pub mod bundle_seal;
pub mod catalog;
pub mod config;
pub mod exchange;
pub mod host;
/// The old name of [`host`], kept until the branches written against it are merged.
#[doc(hidden)]
pub use host as env;
pub mod http;
pub mod paging;
pub mod pkce;
pub mod sanitize;
pub mod secret;
pub mod session;
pub mod store;
pub mod token;
pub mod token_set;

pub use api::{ApiClient, ApiError};
pub use authorize::{CallbackError, PendingAuthorization, parse_callback, start_authorization};
pub use bundle::{BundleContent, BundleError, TokenBundle};
pub use config::{ApiConfig, ClientAuth, Endpoints, OAuthConfig};
pub use session::{Session, SessionError, SessionParts};
pub use store::{MemoryStore, StoreError, TokenStore, Versioned};
pub use token::{Identity, RefreshMode, TokenError, TokenResponse};
pub use token_set::{Health, Need, RenewalPolicy, TokenSet};

#[cfg(test)]
mod tests;
