//! skysync-core: the platform-neutral heart of skysync.
//!
//! Blackbaud's SKY API has no client-credentials grant: a person consents once (authorization
//! code + PKCE) and a refresh token keeps access alive afterwards. This crate holds every decision
//! about that, as values in and values out. Time, randomness and HTTP are injected
//! ([`host`](mod@host), [`http`]); there is no runtime, no transport and no file system here by
//! default (the `reqwest` feature adds a ready-made [`http`] client), and the crate builds for
//! `wasm32-unknown-unknown`.
//!
//! # The path of a consent, in order
//!
//! 1. **Consent.** [`config`] names the application and Blackbaud's endpoints.
//!    [`authorize`] builds the consent URL with a fresh [`pkce`] verifier and `state`, and checks
//!    the redirect that comes back. [`exchange`] trades its code for a [`TokenSet`]
//!    ([`token`] builds the token requests and reads the answers; [`token_set`] turns lifetimes
//!    into instants).
//! 2. **Bundle.** When the consent happens in a browser and the sync runs elsewhere, a
//!    [`bundle`] carries the tokens (or the code, if the browser could not exchange it) to the
//!    server, sealed to its one-time key by [`bundle_seal`].
//! 3. **Store.** A [`store::TokenStore`] keeps the newest token set; the CLI's is a locked file
//!    (or PostgreSQL), the browser's is in memory. [`TokenSet::may_replace`] says when new tokens
//!    may replace stored ones without asking.
//! 4. **Session.** A [`Session`] hands out valid access tokens: [`RenewalPolicy::need`] is the one
//!    rule for refreshing and rotating, [`session::plan`] decides each step as pure functions, and
//!    the session runs them single-flight under the store's lock, never losing a refresh token.
//! 5. **Pages.** An [`ApiClient`] calls the SKY API with the session's tokens:
//!    [`api::classify`](mod@api::classify) reads each answer, [`api::retry`] decides what to do about it (refresh once, wait out a 429,
//!    stop on the quota, back off after a 5xx), [`api::pacer`] keeps one pace. The list
//!    endpoints' pages and the incremental sync's bookmarks are read by the sync modules.
//! 6. **Sink.** Rows and bookmarks leave the core: the host writes them (the CLI's sinks commit
//!    each page's rows with its bookmark).
#![warn(missing_docs)]

pub mod api;
pub mod authorize;
pub mod bundle;
pub mod bundle_seal;
pub mod config;
pub mod exchange;
pub mod host;
pub mod http;
pub mod pkce;
pub mod sanitize;
pub mod secret;
pub mod session;
pub mod store;
/// Sync planning: catalog, pages, cursor, bookmarks, and each entity's plan, as values.
pub mod sync;
pub mod token;
pub mod token_set;

pub use api::{ApiClient, ApiError};
pub use authorize::{CallbackError, PendingAuthorization, parse_callback, start_authorization};
pub use bundle::{BundleContent, BundleError, TokenBundle};
pub use config::{ApiConfig, ClientAuth, Endpoints, OAuthConfig};
pub use session::{Session, SessionError, SessionParts};
pub use store::{MemoryStore, StoreError, TokenStore, Versioned};
/// The entity catalog, also reachable as [`sync::catalog`].
pub use sync::catalog;
pub use token::{Identity, RefreshMode, TokenError, TokenResponse};
pub use token_set::{Health, Need, RenewalPolicy, TokenSet};

#[cfg(test)]
mod tests;
