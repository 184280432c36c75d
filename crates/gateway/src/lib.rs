//! The Socket.IO gateway as a library: configuration, the default handlers,
//! and the server that ties axum, socketioxide and the Redis adapter
//! together.
//!
//! The `gateway` binary is a thin wrapper around [`run`]; embedders who want
//! their own handlers build on [`server`] and [`handlers`] instead.

mod adapter_metrics;
pub mod admission;
pub mod args;
pub mod auth;
pub mod config;
pub mod conn;
pub mod guard;
pub mod handlers;
pub mod hooks;
pub mod limits;
pub mod membership;
pub mod metrics;
pub mod permissions;
pub mod relay_order;
mod request_head;
pub mod server;
pub mod token;

pub use config::GatewayConfig;
pub use server::{run, GatewayError};
