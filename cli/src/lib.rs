//! skysync's headless runner: configuration, token store, commands, sinks and the SKY simulator.
#![warn(missing_docs)]

pub mod args;
pub mod commands;
pub mod config;
pub mod context;
pub mod exit;
pub mod fleet;
pub mod login;
pub mod loopback;
pub mod metrics;
pub mod notify;
pub mod output;
pub mod ping;
pub mod runtime;
pub mod settings;
pub mod sim;
pub mod sink;
pub mod suggest;
pub mod sync;
pub mod token_crypto;
pub mod token_store;

/// `skysync consent-page`'s server, where the browser tests have always found it.
pub use commands::consent_page;
