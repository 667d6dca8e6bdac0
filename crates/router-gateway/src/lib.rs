//! The servers and everything that talks to upstreams.
//!
//! `router-gateway` owns the running system: the [configuration](config), the live
//! [model table](registry) with its deployments, their [circuit breakers](circuit) and
//! [in-flight limits](capacity), [dispatch](dispatch) (weighted balancing, retries,
//! failover, waiting for a slot), the [proxy API](proxy), the
//! streaming [relay](relay), [outcome](outcome) recording, [metrics](metrics), and
//! [starting and stopping](server) it all. Decisions come from `router-core`, wire formats
//! from `router-providers`, persistence from `router-store`.

pub mod app;
mod busy_poll;
pub mod capacity;
pub mod circuit;
pub mod config;
pub mod cpu_time;
pub mod dashboard;
pub mod dispatch;
pub mod judge;
mod listener;
pub mod metrics;
pub mod outcome;
pub mod proxy;
pub mod registry;
pub mod relay;
pub mod routing_api;
pub mod server;
pub mod trim;

pub use app::Gateway;
pub use config::Config;
pub use routing_api::routing_api;
pub use server::{
    Embedded, Running, ShutdownReport, StartError, open, start, start_with_credentials,
};
