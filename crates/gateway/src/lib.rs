//! The Socket.IO gateway as a library: configuration, the default handlers,
//! and the server that ties axum, socketioxide and the Redis adapter
//! together.
//!
//! The `gateway` binary is a thin wrapper around [`run`]; embedders who want
//! their own handlers build on [`server`] and [`handlers`] instead.

mod adapter_metrics;
pub mod args;
pub mod config;
pub mod conn;
pub mod handlers;
pub mod metrics;
mod request_head;
pub mod server;

pub use config::GatewayConfig;
pub use server::{run, GatewayError};
