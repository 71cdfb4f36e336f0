//! Unit tests: a fixed clock, seeded entropy and a scripted transport; no server, no runtime.
//! The pure tests also run on wasm32 (`wasm-bindgen-test-runner`, under Node).

mod api;
#[cfg(not(target_arch = "wasm32"))]
mod api_client;
mod bundle;
mod exchange;
mod fake;
mod oauth;
mod renewal;
mod retry;
#[cfg(not(target_arch = "wasm32"))]
mod session;
mod sync_cursor;
mod sync_partition;
mod sync_plan;
mod sync_quota;
mod token_set;

use time::OffsetDateTime;
use time::macros::datetime;

/// The instant every test starts at.
pub const T0: OffsetDateTime = datetime!(2026-01-15 12:00:00 UTC);
