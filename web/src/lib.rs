//! skysync-web: the browser side of skysync.
//!
//! A thin wasm-bindgen layer over `skysync-core`: the `SkyAuth` class starts
//! a consent (PKCE + `state` kept in `sessionStorage`), takes the redirect back, exchanges the code
//! through the browser's `fetch`, hands out access tokens (refreshing single-flight), calls the SKY
//! API and exports the token bundle that `skysync import` reads. The consent page in `www/` is
//! built on it (`web/build.sh`).
//!
//! Everything that is not JavaScript glue is plain Rust compiled for every target and unit-tested
//! natively: the error names ([`error`]), the configuration object ([`web_config`]) and what is
//! shown and exported after a consent ([`consent`]). The glue itself only exists on wasm32, where
//! it is tested in headless Chromium (`tests/browser.rs`).
#![warn(missing_docs)]

pub mod consent;
pub mod error;
pub mod sync_config;
pub mod web_config;

#[cfg(target_arch = "wasm32")]
mod browser_env;
#[cfg(target_arch = "wasm32")]
mod fetch_client;
#[cfg(all(target_arch = "wasm32", feature = "app-store"))]
pub mod js_store;
#[cfg(target_arch = "wasm32")]
mod pending_store;
#[cfg(target_arch = "wasm32")]
pub mod sky_auth;
#[cfg(all(target_arch = "wasm32", feature = "sync"))]
pub mod sky_sync;

#[cfg(target_arch = "wasm32")]
pub use sky_auth::SkyAuth;
#[cfg(all(target_arch = "wasm32", feature = "sync"))]
pub use sky_sync::SkySync;

#[cfg(test)]
mod tests;
