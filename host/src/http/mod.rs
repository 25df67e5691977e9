//! What both listeners' handlers share: errors as HTTP responses
//! ([`ApiError`]) and bounded body reading ([`body`]). The event listener
//! is [`crate::ingress`], the admin listener [`crate::admin`]; the
//! composition root (`crate::app`) serves both.

pub mod body;
mod error;

pub use self::error::ApiError;
