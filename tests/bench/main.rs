//! The benchmark's items that run against the simulator (see `scripts/bench.sh` and
//! BENCHMARKS.md), a test target of their own so that the script's release build compiles only
//! these, not the whole end-to-end suite. Their only test in the suite checks the table script.

#[path = "../it/bench.rs"]
mod bench;
#[path = "../it/bench_partition.rs"]
mod bench_partition;
