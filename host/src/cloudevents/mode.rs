//! Content mode detection from `Content-Type` (HTTP binding §3).

use super::DecodeError;

/// How an HTTP message carries its event(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Attributes in `ce-` headers, data as the body (§3.1).
    #[default]
    Binary,
    /// One JSON event format document as the body (§3.2).
    Structured,
    /// A JSON array of events as the body (§3.3).
    Batched,
}

/// Structured mode media type prefix (§3.2.1).
const STRUCTURED: &str = "application/cloudevents";
/// Batched mode media type prefix (§3.3).
const BATCHED: &str = "application/cloudevents-batch";

/// Structured mode content type Sluice sends.
pub const STRUCTURED_JSON: &str = "application/cloudevents+json; charset=utf-8";
/// Batched mode content type Sluice sends.
pub const BATCHED_JSON: &str = "application/cloudevents-batch+json; charset=utf-8";

impl Mode {
    /// Detect the mode of a message from its `Content-Type`, case-insensitively
    /// and ignoring parameters such as `charset`.
    ///
    /// # Errors
    /// [`DecodeError::UnsupportedFormat`] for a structured or batched format
    /// other than JSON (e.g. `application/cloudevents+avro`).
    pub fn detect(content_type: Option<&str>) -> Result<Self, DecodeError> {
        let Some(ct) = content_type else {
            return Ok(Self::Binary);
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (mode, format) = if let Some(rest) = essence.strip_prefix(BATCHED) {
            (Self::Batched, rest)
        } else if let Some(rest) = essence.strip_prefix(STRUCTURED) {
            (Self::Structured, rest)
        } else {
            return Ok(Self::Binary);
        };
        match format {
            "+json" => Ok(mode),
            // `application/cloudevents` alone names no format; JSON is the
            // one every implementation must support (§3.2.1), so assume it.
            "" => Ok(mode),
            _ => Err(DecodeError::UnsupportedFormat(essence)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_modes_case_insensitively_with_parameters() {
        // HTTP binding §3.2.1, §3.3
        assert_eq!(Mode::detect(None), Ok(Mode::Binary));
        assert_eq!(Mode::detect(Some("application/json")), Ok(Mode::Binary));
        assert_eq!(
            Mode::detect(Some("Application/CloudEvents+JSON; charset=UTF-8")),
            Ok(Mode::Structured)
        );
        assert_eq!(
            Mode::detect(Some("application/cloudevents-batch+json")),
            Ok(Mode::Batched)
        );
        assert_eq!(
            Mode::detect(Some("application/cloudevents+avro")),
            Err(DecodeError::UnsupportedFormat(
                "application/cloudevents+avro".into()
            ))
        );
        assert!(Mode::detect(Some("application/cloudevents-batch+avro")).is_err());
        // The bare media types name no format: JSON, the mandatory one (§3.3)
        assert_eq!(
            Mode::detect(Some("application/cloudevents")),
            Ok(Mode::Structured)
        );
        assert_eq!(
            Mode::detect(Some(" APPLICATION/CLOUDEVENTS-BATCH ;charset=utf-8")),
            Ok(Mode::Batched)
        );
    }
}
