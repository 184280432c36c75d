//! Measuring the Socket.IO cluster from the outside.
//!
//! The benchmark has to compare our gateways with Node, socketioxide-redis
//! and a do-nothing floor using one client implementation, so every number
//! is produced by the same code:
//!
//! - [`client`]: a lean Socket.IO v5 / Engine.IO 4 WebSocket client (also
//!   used by `siocat`);
//! - [`scenario`]: the `fanout`, `rooms` and `idle` load scenarios and their
//!   measurements, reported as an [`outcome`];
//! - [`payload`] and [`stats`]: timestamped payloads, counters and HDR
//!   latency histograms, and [`receipts`]: duplicates told from deliveries;
//! - [`procfs`]: server CPU time and memory from `/proc`;
//! - [`floor`]: the minimal relay server used as the machine's limit;
//! - [`token`]: the clients' tokens when the gateways require them;
//! - [`report`]: merging run results into the summary and markdown table
//!   of `make bench`, [`chart`] its SVG chart, and [`output`] writing the
//!   three files.

pub mod chart;
pub mod client;
pub mod floor;
pub mod outcome;
pub mod output;
pub mod payload;
pub mod procfs;
pub mod receipts;
pub mod report;
mod rooms;
pub mod scenario;
pub mod stats;
pub mod targets;
pub mod token;
