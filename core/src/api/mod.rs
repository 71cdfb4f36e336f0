//! Calling the SKY API: what each answer means ([`classify`](mod@classify)), what to do about it ([`retry`]:
//! refresh once after a 401, wait out a 429, stop on the quota, back off after a 5xx), one pace
//! for all calls ([`pacer`]), and the client that runs it all ([`client`]).

pub mod classify;
pub mod client;
pub mod error;
pub mod pacer;
pub mod retry;

pub use classify::{Verdict, classify, error_message, json_body, quota_replenish, retry_after};
pub use client::{ApiClient, ApiCounters, CallStats};
pub use error::ApiError;
pub use pacer::{DEFAULT_PACE, Pacer};
pub use retry::{Action, CallRetry, Outcome, RetryNotice, RetryPolicy};
