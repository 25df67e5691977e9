//! `LIKE` patterns (spec §3.4.3): `%` is any run of characters, `_` one
//! character, `\%` and `\_` the characters themselves; everything else,
//! a lone backslash included, matches itself (case-sensitive).

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// These characters.
    Text(String),
    /// `_`: one character.
    One,
    /// `%`: any run of characters.
    Many,
}

impl Pattern {
    /// Compile the (already unquoted) pattern `p`.
    pub fn new(p: &str) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = p.chars().peekable();
        while let Some(c) = chars.next() {
            let wildcard = match c {
                '%' => Some(Piece::Many),
                '_' => Some(Piece::One),
                '\\' => {
                    if let Some(&next @ ('%' | '_')) = chars.peek() {
                        chars.next();
                        text.push(next);
                    } else {
                        text.push('\\');
                    }
                    None
                }
                c => {
                    text.push(c);
                    None
                }
            };
            if let Some(w) = wildcard {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(w);
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Self(pieces)
    }

    /// Whether `text` matches, in time proportional to the product of the
    /// two lengths at worst (one `%` is backtracked at a time).
    pub fn matches(&self, text: &str) -> bool {
        let pieces = &self.0;
        let (mut p, mut t) = (0, 0);
        // The piece after the last `%` seen and where its next try starts.
        let mut retry: Option<(usize, usize)> = None;
        loop {
            if let Some(piece) = pieces.get(p) {
                let rest = &text[t..];
                match piece {
                    Piece::Many if p + 1 == pieces.len() => return true,
                    Piece::Many => {
                        retry = Some((p + 1, t));
                        p += 1;
                        continue;
                    }
                    Piece::One => {
                        if let Some(c) = rest.chars().next() {
                            t += c.len_utf8();
                            p += 1;
                            continue;
                        }
                    }
                    Piece::Text(s) => {
                        if rest.starts_with(s.as_str()) {
                            t += s.len();
                            p += 1;
                            continue;
                        }
                    }
                }
            } else if t == text.len() {
                return true;
            }
            // A mismatch: let the last `%` take one more character.
            let Some((after, from)) = retry else {
                return false;
            };
            let Some(c) = text[from..].chars().next() else {
                return false;
            };
            t = from + c.len_utf8();
            p = after;
            retry = Some((after, t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes() {
        let m = |p: &str, t: &str| Pattern::new(p).matches(t);
        assert!(m("_b%", "abcd1"));
        assert!(!m("_b%", "b"));
        assert!(!m("_b%", "aBc"));
        assert!(m("a%b%c", "azzzbzzzc"));
        assert!(m("%", ""));
        assert!(!m("_", ""));
        assert!(m("é_ü%", "éxü"));
        assert!(m(r"abc\%", "abc%"));
        assert!(!m(r"abc\%", "abcd"));
        assert!(m(r"a\b", r"a\b"));
        assert!(m("%a%a%a%a%b", &format!("{}b", "a".repeat(200))));
        assert!(!m("%a%a%a%a%b", &"a".repeat(200)));
        assert!(m("%.error", "com.github.error"));
        assert!(!m(".%.%.", "ab.cde"));
    }
}
