//! The servers and everything that talks to upstreams.
pub mod circuit;
pub mod config;
pub mod metrics;
