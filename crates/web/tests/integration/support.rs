//! The suite's fixtures come from the shared test kit (`crates/testkit`).

pub use testkit::*;
