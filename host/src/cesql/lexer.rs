//! Splits a CESQL expression into tokens, each with its column.

use super::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    /// A string literal, unescaped.
    Str(String),
    /// Digits only; the sign and the range are the parser's.
    Digits(String),
    /// A keyword, an attribute or a function name: `[A-Za-z0-9_]+`.
    Word(String),
    End,
}

/// A token and the 1-based column (in characters) where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub column: usize,
}

/// Every token of `text`, ending with [`Tok::End`].
pub(super) fn tokens(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let mut one = |tok, len| {
            out.push(Token { tok, column });
            len
        };
        i += match c {
            ' ' | '\t' | '\r' | '\n' => 1,
            '(' => one(Tok::LParen, 1),
            ')' => one(Tok::RParen, 1),
            ',' => one(Tok::Comma, 1),
            '+' => one(Tok::Plus, 1),
            '-' => one(Tok::Minus, 1),
            '*' => one(Tok::Star, 1),
            '/' => one(Tok::Slash, 1),
            '%' => one(Tok::Percent, 1),
            '=' => one(Tok::Equal, 1),
            '!' if chars.get(i + 1) == Some(&'=') => one(Tok::NotEqual, 2),
            '<' => match chars.get(i + 1) {
                Some('=') => one(Tok::LessEqual, 2),
                Some('>') => one(Tok::NotEqual, 2),
                _ => one(Tok::Less, 1),
            },
            '>' if chars.get(i + 1) == Some(&'=') => one(Tok::GreaterEqual, 2),
            '>' => one(Tok::Greater, 1),
            '\'' | '"' => {
                let (s, len) = string(&chars[i..]).ok_or_else(|| ParseError {
                    column,
                    message: "this string literal is not closed".into(),
                })?;
                one(Tok::Str(s), len)
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .count();
                let word: String = chars[i..i + len].iter().collect();
                if word.bytes().all(|b| b.is_ascii_digit()) {
                    one(Tok::Digits(word), len)
                } else {
                    one(Tok::Word(word), len)
                }
            }
            other => {
                return Err(ParseError {
                    column,
                    message: format!("unexpected character `{other}`"),
                })
            }
        };
    }
    out.push(Token {
        tok: Tok::End,
        column: chars.len() + 1,
    });
    Ok(out)
}

/// The string literal at the start of `chars` (which starts with its
/// quote) and its length in characters; `None` when it is not closed.
/// A backslash before the delimiting quote escapes it; any other
/// backslash is kept as written (so `\%` and `\_` reach LIKE patterns).
fn string(chars: &[char]) -> Option<(String, usize)> {
    let quote = chars[0];
    let mut s = String::new();
    let mut i = 1;
    loop {
        match *chars.get(i)? {
            '\\' => {
                let next = *chars.get(i + 1)?;
                if next != quote {
                    s.push('\\');
                }
                s.push(next);
                i += 2;
            }
            c if c == quote => return Some((s, i + 1)),
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokens(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn strings_unescape_their_own_quote_only() {
        assert_eq!(toks(r#"'a"b\'c'"#)[0], Tok::Str("a\"b'c".into()));
        assert_eq!(toks(r#""a'b\"c""#)[0], Tok::Str("a'b\"c".into()));
        assert_eq!(toks(r"'a\_b\%c\\'")[0], Tok::Str(r"a\_b\%c\\".into()));
    }

    #[test]
    fn operators_and_columns() {
        let t = tokens("a<>1 <= b!=c").unwrap();
        let cols: Vec<usize> = t.iter().map(|t| t.column).collect();
        assert_eq!(cols, [1, 2, 4, 6, 9, 10, 12, 13]);
        assert_eq!(t[1].tok, Tok::NotEqual);
        assert_eq!(t[3].tok, Tok::LessEqual);
        assert_eq!(t[5].tok, Tok::NotEqual);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(tokens("a = 'x").unwrap_err().column, 5);
        assert_eq!(tokens("a ! b").unwrap_err().column, 3);
        assert_eq!(tokens("é").unwrap_err().column, 1);
    }
}
