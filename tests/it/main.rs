
mod sim;
mod sinks;
