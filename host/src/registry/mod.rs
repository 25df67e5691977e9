//! Durable storage of what users deploy: function components (with their
//! precompiled artifacts) and trigger bindings, under the data directory.
//!
//! The registry only stores; compiling and validating is the runtime's job
//! ([`crate::runtime::Runtime::compile`]).

mod functions;

mod objects;
mod store;

pub use crate::name::{InvalidName, Name};
pub use functions::{Digest, FunctionRecord, FunctionStore, Version};
pub use objects::{FileOwned, ObjectStore, RoutingStores};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Reading or writing the data directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored record could not be parsed.
    #[error("corrupt record {path}: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// Why it could not be read.
        reason: String,
    },
}
