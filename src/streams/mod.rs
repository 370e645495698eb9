//! Standard SSF streams: receivers create, read, update and delete their own stream through the
//! stream management API (SSF 1.0 §8.1.1), read and change its status, and name the push endpoint
//! SETs are delivered to. That endpoint is caller input, so [`endpoint`] checks it before it is
//! stored and again, against DNS rebinding, every time a connection is made.

pub mod config;
pub mod endpoint;
pub mod push;
