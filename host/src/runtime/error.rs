//! Why an invocation failed, classified for callers and metrics.

use std::time::Duration;

use crate::name::Name;

/// An invocation that did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No function of that name is deployed.
    #[error("function `{0}` is not deployed")]
    NotFound(Name),
    /// The function's artifact could not be loaded or linked.
    #[error("function `{function}` could not be loaded: {reason}")]
    Load {
        /// The function.
        function: Name,
        /// Why.
        reason: String,
    },
    /// Every instance slot is in use; try again later.
    #[error("no instance slot is free: too many invocations at once")]
    Busy,
    /// The handler ran past its CPU deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The handler asked for more memory than its cap.
    #[error("out of memory: the handler exceeded its {limit_mib} MiB cap")]
    OutOfMemory {
        /// The cap in MiB.
        limit_mib: u32,
    },
    /// The handler exhausted its wasm stack.
    #[error("stack overflow")]
    StackOverflow,
    /// The handler trapped (panicked, hit `unreachable`, ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The handler returned an error.
    #[error("handler error: {0}")]
    Handler(String),
    /// The handler returned an event that is not a valid CloudEvent or is
    /// too large.
    #[error("invalid reply: {0}")]
    InvalidReply(String),
}

/// The kind of an [`InvokeError`], as a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`InvokeError::NotFound`].
    NotFound,
    /// See [`InvokeError::Load`].
    Load,
    /// See [`InvokeError::Busy`].
    Busy,
    /// See [`InvokeError::Timeout`].
    Timeout,
    /// See [`InvokeError::OutOfMemory`].
    OutOfMemory,
    /// See [`InvokeError::StackOverflow`].
    StackOverflow,
    /// See [`InvokeError::Trap`].
    Trap,
    /// See [`InvokeError::Handler`].
    Handler,
    /// See [`InvokeError::InvalidReply`].
    InvalidReply,
}

impl ErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Load => "load",
            Self::Busy => "busy",
            Self::Timeout => "timeout",
            Self::OutOfMemory => "oom",
            Self::StackOverflow => "stack_overflow",
            Self::Trap => "trap",
            Self::Handler => "handler",
            Self::InvalidReply => "invalid_reply",
        }
    }
}

impl InvokeError {
    /// This error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Load { .. } => ErrorKind::Load,
            Self::Busy => ErrorKind::Busy,
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::OutOfMemory { .. } => ErrorKind::OutOfMemory,
            Self::StackOverflow => ErrorKind::StackOverflow,
            Self::Trap(_) => ErrorKind::Trap,
            Self::Handler(_) => ErrorKind::Handler,
            Self::InvalidReply(_) => ErrorKind::InvalidReply,
        }
    }
}
