//! skysync's headless runner: configuration, token store, commands, sinks and the SKY simulator.
#![warn(missing_docs)]

pub mod sim;
pub mod sink;
pub mod sync;
