//! The durable ingress log: `POST /` answers 202 only once its events are
//! fsync'd in a [redb](https://www.redb.org) database under the data
//! directory; each entry is removed once every delivery of its event has
//! ended, and entries still pending at start-up are delivered again. See
//! `docs/durability.md` for the guarantee. The broker's durable mode
//! (`crate::broker`) drives deliveries from it.

mod log;
mod record;

pub use self::log::{open, Backlog, LogError, LogHandle, Seq};

/// The log's file name in the data directory.
pub const FILE_NAME: &str = "ingress-log.redb";
