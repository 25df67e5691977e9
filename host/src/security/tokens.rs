//! Bearer tokens: loaded from a file or an environment variable (never a
//! command-line argument, which `ps` shows), and checked in constant time.
//!
//! Admin tokens are `NAME:SCOPE:SECRET`, sender tokens `NAME:SECRET`, one
//! per line (or separated by commas in an environment variable); blank
//! lines and lines starting with `#` are skipped.

use std::path::Path;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable holding admin tokens.
pub const ADMIN_TOKENS_ENV: &str = "SLUICE_ADMIN_TOKENS";
/// The environment variable holding sender tokens.
pub const SENDER_TOKENS_ENV: &str = "SLUICE_SENDER_TOKENS";
/// The shortest secret accepted: 16 characters.
pub const MIN_SECRET_LEN: usize = 16;

/// What a token may do, ordered by what it allows on the admin API
/// (`Send` allows nothing there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Sending events (sender tokens have this scope only); nothing on the
    /// admin API.
    Send,
    /// List, get, graph, metrics, audit log: every `GET`.
    Read,
    /// Read, and deploy, delete, change routing.
    Write,
}

impl Scope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Send => "send",
        }
    }
}

/// One configured token; the secret is kept as its SHA-256 only.
#[derive(Clone)]
struct Entry {
    name: String,
    scope: Scope,
    digest: [u8; 32],
}

/// A set of tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| (&e.name, e.scope)))
            .finish()
    }
}

/// Who a request's token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (not its secret), for logs and the audit log.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
}

/// A token file or variable that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("reading tokens from {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line that does not parse; the secret is never echoed.
    #[error("{origin}, entry {line}: {reason}")]
    Invalid {
        /// The file or variable.
        origin: String,
        /// One-based entry number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Which kind of token a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `NAME:SCOPE:SECRET`.
    Admin,
    /// `NAME:SECRET`.
    Sender,
}

impl Tokens {
    /// Load tokens of `kind` from `file` (when set) and from the
    /// environment variable `env` (when set and not empty).
    ///
    /// # Errors
    /// When the file cannot be read or an entry does not parse.
    pub fn load(kind: Kind, file: Option<&Path>, env: &str) -> Result<Self, TokenError> {
        let mut tokens = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.display().to_string(),
                source,
            })?;
            tokens.parse(kind, &text, &path.display().to_string())?;
        }
        if let Ok(value) = std::env::var(env) {
            tokens.parse(kind, &value.replace(',', "\n"), &format!("${env}"))?;
        }
        Ok(tokens)
    }

    fn parse(&mut self, kind: Kind, text: &str, origin: &str) -> Result<(), TokenError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: &str| TokenError::Invalid {
                origin: origin.to_owned(),
                line: i + 1,
                reason: reason.to_owned(),
            };
            let (name, scope, secret) = match kind {
                Kind::Admin => {
                    let mut parts = line.splitn(3, ':');
                    let (Some(name), Some(scope), Some(secret)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(invalid("expected NAME:SCOPE:SECRET"));
                    };
                    let scope = match scope {
                        "read" => Scope::Read,
                        "write" => Scope::Write,
                        _ => return Err(invalid("the scope must be `read` or `write`")),
                    };
                    (name, scope, secret)
                }
                Kind::Sender => {
                    let Some((name, secret)) = line.split_once(':') else {
                        return Err(invalid("expected NAME:SECRET"));
                    };
                    (name, Scope::Send, secret)
                }
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(invalid("the name must be letters, digits, `-`, `_` or `.`"));
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(invalid(&format!(
                    "the secret must be at least {MIN_SECRET_LEN} characters"
                )));
            }
            if secret.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
                return Err(invalid("the secret must be visible ASCII"));
            }
            if self.entries.iter().any(|e| e.name == name) {
                return Err(invalid(&format!("the name `{name}` is used twice")));
            }
            self.entries.push(Entry {
                name: name.to_owned(),
                scope,
                digest: Sha256::digest(secret.as_bytes()).into(),
            });
        }
        Ok(())
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The token whose secret is `presented`. Every configured token is
    /// compared, in constant time over equal-length digests, so the time
    /// taken says nothing about which (or whether one) matched.
    pub fn verify(&self, presented: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&Entry> = None;
        for e in &self.entries {
            if bool::from(e.digest.ct_eq(&digest)) {
                found = Some(e);
            }
        }
        found.map(|e| Principal {
            name: e.name.clone(),
            scope: e.scope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(text: &str) -> Result<Tokens, TokenError> {
        let mut t = Tokens::default();
        t.parse(Kind::Admin, text, "test")?;
        Ok(t)
    }

    #[test]
    fn admin_tokens_parse_and_verify() {
        let t =
            admin("# ops\nci:write:0123456789abcdef\n\ngrafana:read:fedcba9876543210:x\n").unwrap();
        assert_eq!(
            t.verify("0123456789abcdef"),
            Some(Principal {
                name: "ci".into(),
                scope: Scope::Write
            })
        );
        // The secret may itself contain `:`.
        assert_eq!(
            t.verify("fedcba9876543210:x").map(|p| p.scope),
            Some(Scope::Read)
        );
        assert_eq!(t.verify("0123456789abcdeF"), None);
        assert_eq!(t.verify(""), None);
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_secret() {
        for (text, needle) in [
            ("ci:admin:0123456789abcdef", "scope"),
            ("ci:write:short", "at least 16"),
            ("ci write 0123456789abcdef", "NAME:SCOPE:SECRET"),
            ("c i:write:0123456789abcdef", "name"),
            (
                "a:write:0123456789abcdef\na:read:0123456789abcdeg",
                "used twice",
            ),
        ] {
            let err = admin(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains("0123456789abcdef"), "{err}");
        }
        let mut s = Tokens::default();
        assert!(s
            .parse(Kind::Sender, "partner:0123456789abcdef", "t")
            .is_ok());
        assert_eq!(
            s.verify("0123456789abcdef").map(|p| p.scope),
            Some(Scope::Send)
        );
    }
}
