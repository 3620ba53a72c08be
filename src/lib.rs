//! dbss-exporter: a Prometheus exporter for the upgrade state of Huawei Cloud
//! Database Security Service (DBSS) audit instances.
//!
//! Data flows one way:
//!
//! - [`config`] reads and validates the TOML file into targets and credentials;
//! - [`poller`] runs one task per target that polls the upgrade-status API
//!   through [`client`] (one per TLS choice, from [`client_pool`]), signing
//!   in with [`auth`] (and [`signer`] for AK/SK), and decoding answers with
//!   [`api`]; [`retry`] decides which failed requests are tried again and
//!   [`ratelimit`] spaces requests per endpoint;
//! - each task keeps a [`project::ProjectState`] and renders it with
//!   [`render`] into the [`snapshot`], which publishes whole pages;
//! - [`server`] serves the latest page plus [`selfmetrics`] (with the
//!   `process_*` metrics of `process`, on Linux) on `/metrics`,
//!   under the TLS, basic auth and headers of [`web`].
//!
//! [`app`] wires these together; [`sim`] is the embedded API simulator that
//! [`demo`] and the tests run against, and that [`standalone`] runs on its
//! own beside a configuration file pointing at it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod client_pool;
pub mod config;
pub mod demo;
pub mod logging;
pub mod poller;
#[cfg(target_os = "linux")]
pub mod process;
pub mod project;
pub mod ratelimit;
pub mod render;
pub mod retry;
pub mod secret;
pub mod selfmetrics;
pub mod server;
pub mod signer;
pub mod sim;
pub mod snapshot;
pub mod standalone;
pub mod web;
