
mod sinks;
