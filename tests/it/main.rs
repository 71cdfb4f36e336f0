mod session;
mod sim;
mod sinks;
mod sync;
