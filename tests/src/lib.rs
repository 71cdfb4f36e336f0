//! Shared helpers for skysync's end-to-end tests: throwaway servers and fixtures.
#![warn(missing_docs)]

pub mod cli;
pub mod db;
pub mod deadline;
pub mod pg;
pub mod process;
pub mod procs;
pub mod sky;
pub mod tier;
