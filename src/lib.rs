//! ssf-transmitter: a Shared Signals (SSF) transmitter for Okta.
//!
//! It builds Security Event Tokens for risk changes, signs them with issuer keys it manages,
//! publishes its JWKS and SSF metadata, and (in later modules) pushes SETs to Okta and runs
//! enforcement actions over the Okta Management API.
//!
//! `main.rs` only parses the command line and calls into [`app`] and friends.

#![warn(missing_docs)]
#![deny(clippy::unwrap_used)]

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod contain;
pub mod delivery;
pub mod enforcement;
pub mod files;
pub mod http;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod okta;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod set;
pub mod signals;
pub mod store;
pub mod telemetry;
pub mod validation;

pub use app::Application;
pub use config::Config;
