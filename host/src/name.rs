//! Names of functions, triggers and sinks.

use std::fmt;
use std::str::FromStr;

/// A validated name: 1–63 characters of `[a-z0-9-]`, starting with a letter
/// or digit (DNS-label style, so names are safe in paths and URLs).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

/// A name that breaks the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid name `{0}`: use 1-63 characters of a-z, 0-9 and `-`, starting with a letter or digit"
)]
pub struct InvalidName(pub String);

impl Name {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidName(s.to_owned()))
        }
    }
}

impl TryFrom<String> for Name {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["echo", "currency-convert", "a1", "9"] {
            assert!(good.parse::<Name>().is_ok(), "{good}");
        }
        for bad in ["", "-x", "Echo", "a/b", "..", "a_b", &"x".repeat(64)] {
            assert!(bad.parse::<Name>().is_err(), "{bad}");
        }
    }
}
