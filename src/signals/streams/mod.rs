//! Standard SSF streams: receivers create, read, update and delete their own stream through the
//! stream management API (SSF 1.0 §8.1.1), read and change its status, add and remove subjects,
//! ask for verification and poll. The push endpoint they name is caller input, so [`endpoint`]
//! checks it before it is stored and again, against DNS rebinding, every time a connection is
//! made. Pushing to these streams is the delivery worker's (`crate::delivery::streams`).

pub mod config;
pub mod endpoint;
pub mod routing;
