//! The nightly sync: SKY API list endpoints into a database, incrementally and resumably.
//!
//! [`engine`] does the work: per entity it pages through a SKY list and commits each page's rows
//! together with the bookmark that covers them, so a run killed at any point resumes from the last
//! committed page with nothing lost and nothing duplicated. Entities run concurrently through one
//! shared API client (one rate limiter) and one sink.

pub mod engine;
pub mod estimate;
pub mod progress;
pub mod report;
#[cfg(test)]
mod tests;

pub use engine::{EngineOptions, EntityReport, RunMode, RunReport};
