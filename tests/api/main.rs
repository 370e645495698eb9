//! Integration tests: one binary (one link step). The app runs on port 0 against a temporary
//! directory; tests talk to it over loopback HTTP.

mod helpers;
mod pg;

mod approvals;
mod auth_walk;
mod browser;
mod cli;
mod clients;
mod containments;
mod delivery;
mod discovery;
mod durable;
mod enforce;
mod errors;
mod exposure;
mod fanout;
mod idempotency;
mod jobs;
mod keys;
mod oauth;
mod okta_calls;
mod okta_contract;
mod okta_oauth;
mod openapi;
mod pacing;
mod privilege;
mod receiver;
mod recovery;
mod replicas;
mod routes;
mod sandbox;
mod sandbox_oauth;
mod shutdown;
mod signals;
mod steering;
mod streams;
