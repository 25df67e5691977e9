//! A recursive-descent parser for CESQL (spec §2), one function per
//! precedence level of §3.6, loosest first:
//!
//! ```text
//! logic    := compare (("AND" | "OR" | "XOR") compare)*
//! compare  := additive (("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") additive)*
//! additive := multiply (("+" | "-") multiply)*
//! multiply := postfix (("*" | "/" | "%") postfix)*
//! postfix  := unary ("NOT"? "LIKE" string | "NOT"? "IN" "(" logic ("," logic)* ")")*
//! unary    := "NOT" unary | "-" unary | primary
//! primary  := literal | "EXISTS" identifier | function "(" arguments ")"
//!           | identifier | "(" logic ")"
//! ```
//!
//! Binary operators of one level group left to right. Keywords and
//! function names are case-insensitive; attribute names are lower-cased.

use super::ast::{Attribute, BinaryOp, Expr, Literal, LogicOp};
use super::functions::Function;
use super::lexer::{tokens, Tok, Token};
use super::like::Pattern;
use super::ParseError;

/// The parsed expression, and where (if anywhere) it mixes `AND`, `OR`
/// and `XOR` without parentheses.
pub(super) struct Parsed {
    pub expr: Expr,
    pub mixed_logic: Option<usize>,
}

/// Parse `text`.
pub(super) fn parse(text: &str) -> Result<Parsed, ParseError> {
    let mut p = Parser {
        tokens: tokens(text)?,
        at: 0,
        mixed_logic: None,
        depth: 0,
        nesting: 0,
    };
    let expr = p.logic()?;
    match p.peek() {
        Tok::End => Ok(Parsed {
            expr,
            mixed_logic: p.mixed_logic,
        }),
        _ => Err(p.error("expected an operator or the end of the expression")),
    }
}

/// Deepest tree accepted, so no expression can overflow the stack of the
/// parser or of the evaluator (both recurse once per level). Every
/// parenthesis, unary operator and operator of a chain (`a OR b OR c` is
/// two) is a level.
pub(super) const MAX_DEPTH: usize = 256;

/// Most parentheses (sub-expressions, function calls, IN sets) open at
/// once: each takes the parser through every precedence level again.
pub(super) const MAX_NESTING: usize = 32;

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    mixed_logic: Option<usize>,
    depth: usize,
    nesting: usize,
}

fn keyword(tok: &Tok, kw: &str) -> bool {
    matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

const KEYWORDS: [&str; 9] = [
    "AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE",
];

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at.min(self.tokens.len() - 1)].tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)].tok
    }

    fn column(&self) -> usize {
        self.tokens[self.at.min(self.tokens.len() - 1)].column
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.at.min(self.tokens.len() - 1)].clone();
        self.at += 1;
        t
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        let found = match self.peek() {
            Tok::End => "the end".to_owned(),
            Tok::Str(_) => "a string".to_owned(),
            Tok::Digits(d) => format!("`{d}`"),
            Tok::Word(w) => format!("`{w}`"),
            other => format!("`{}`", symbol(other)),
        };
        ParseError {
            column: self.column(),
            message: format!("{}, found {found}", message.into()),
        }
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == tok {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}")))
        }
    }

    /// One more level (undone by [`Parser::leave`]).
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError {
                column: self.column(),
                message: format!(
                    "the expression is more than {MAX_DEPTH} levels deep (every parenthesis, \
                     unary operator and operator of a chain is one; IN takes a list in one)"
                ),
            });
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth -= levels;
    }

    /// Parse `inner` inside one more pair of parentheses.
    fn nested<T>(
        &mut self,
        inner: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.nesting == MAX_NESTING {
            return Err(ParseError {
                column: self.column(),
                message: format!("more than {MAX_NESTING} parentheses open at once"),
            });
        }
        self.nesting += 1;
        let t = inner(self)?;
        self.nesting -= 1;
        Ok(t)
    }

    fn logic(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let mut levels = 1;
        let mut left = self.compare()?;
        let mut first: Option<LogicOp> = None;
        loop {
            let op = match self.peek() {
                t if keyword(t, "AND") => LogicOp::And,
                t if keyword(t, "OR") => LogicOp::Or,
                t if keyword(t, "XOR") => LogicOp::Xor,
                _ => break,
            };
            if first.is_some_and(|f| f != op) && self.mixed_logic.is_none() {
                self.mixed_logic = Some(self.column());
            }
            first = Some(op);
            self.enter()?;
            levels += 1;
            self.at += 1;
            let right = self.compare()?;
            left = Expr::Logic {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        self.leave(levels);
        Ok(left)
    }

    fn binary(
        &mut self,
        next: fn(&mut Self) -> Result<Expr, ParseError>,
        op_of: fn(&Tok) -> Option<BinaryOp>,
    ) -> Result<Expr, ParseError> {
        let mut left = next(self)?;
        let mut levels = 0;
        while let Some(op) = op_of(self.peek()) {
            self.enter()?;
            levels += 1;
            self.at += 1;
            let right = next(self)?;
            left = Expr::Binary {
                op,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        self.leave(levels);
        Ok(left)
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        self.binary(Self::additive, |t| match t {
            Tok::Equal => Some(BinaryOp::Equal),
            Tok::NotEqual => Some(BinaryOp::NotEqual),
            Tok::Less => Some(BinaryOp::Less),
            Tok::LessEqual => Some(BinaryOp::LessEqual),
            Tok::Greater => Some(BinaryOp::Greater),
            Tok::GreaterEqual => Some(BinaryOp::GreaterEqual),
            _ => None,
        })
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        self.binary(Self::multiply, |t| match t {
            Tok::Plus => Some(BinaryOp::Add),
            Tok::Minus => Some(BinaryOp::Subtract),
            _ => None,
        })
    }

    fn multiply(&mut self) -> Result<Expr, ParseError> {
        self.binary(Self::postfix, |t| match t {
            Tok::Star => Some(BinaryOp::Multiply),
            Tok::Slash => Some(BinaryOp::Divide),
            Tok::Percent => Some(BinaryOp::Modulo),
            _ => None,
        })
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut value = self.unary()?;
        let mut levels = 0;
        loop {
            let negated = keyword(self.peek(), "NOT");
            let op = self.peek_at(usize::from(negated));
            let (like, is_in) = (keyword(op, "LIKE"), keyword(op, "IN"));
            if like || is_in {
                self.enter()?;
                levels += 1;
            }
            if like {
                self.at += 1 + usize::from(negated);
                let Tok::Str(p) = self.peek().clone() else {
                    return Err(self.error("LIKE needs a string literal pattern"));
                };
                self.at += 1;
                value = Expr::Like {
                    value: Box::new(value),
                    pattern: Pattern::new(&p),
                    negated,
                };
            } else if is_in {
                self.at += 1 + usize::from(negated);
                self.expect(&Tok::LParen, "`(` to open the IN set")?;
                let set = self.nested(|p| {
                    let mut set = vec![p.logic()?];
                    while p.peek() == &Tok::Comma {
                        p.at += 1;
                        set.push(p.logic()?);
                    }
                    Ok(set)
                })?;
                self.expect(&Tok::RParen, "`,` or `)` in the IN set")?;
                value = Expr::In {
                    value: Box::new(value),
                    set,
                    negated,
                };
            } else if negated {
                self.at += 1;
                return Err(self.error("expected LIKE or IN after NOT"));
            } else {
                self.leave(levels);
                return Ok(value);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = match self.peek() {
            t if keyword(t, "NOT") => {
                self.at += 1;
                Expr::Not(Box::new(self.unary()?))
            }
            Tok::Minus | Tok::Plus if matches!(self.peek_at(1), Tok::Digits(_)) => {
                let negative = self.bump().tok == Tok::Minus;
                self.integer(negative)?
            }
            Tok::Minus => {
                self.at += 1;
                Expr::Negate(Box::new(self.unary()?))
            }
            _ => self.primary()?,
        };
        self.leave(1);
        Ok(e)
    }

    /// The integer literal at the cursor, negated when `negative`.
    fn integer(&mut self, negative: bool) -> Result<Expr, ParseError> {
        let column = self.column();
        let Tok::Digits(digits) = self.bump().tok else {
            return Err(self.error("expected digits"));
        };
        let value = digits
            .parse::<i64>()
            .ok()
            .map(|v| if negative { -v } else { v })
            .and_then(|v| i32::try_from(v).ok())
            .ok_or_else(|| ParseError {
                column,
                message: format!(
                    "integer literal {}{digits} is outside the 32-bit range",
                    if negative { "-" } else { "" }
                ),
            })?;
        Ok(Expr::Literal(Literal::Integer(value)))
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let column = self.column();
        match self.peek().clone() {
            Tok::Digits(_) => self.integer(false),
            Tok::Str(s) => {
                self.at += 1;
                Ok(Expr::Literal(Literal::String(s)))
            }
            Tok::LParen => {
                self.at += 1;
                let e = self.nested(Self::logic)?;
                self.expect(&Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Word(w) if self.peek_at(1) == &Tok::LParen => self.call(&w, column),
            Tok::Word(w) if w.eq_ignore_ascii_case("TRUE") => {
                self.at += 1;
                Ok(Expr::Literal(Literal::Boolean(true)))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("FALSE") => {
                self.at += 1;
                Ok(Expr::Literal(Literal::Boolean(false)))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("EXISTS") => {
                self.at += 1;
                Ok(Expr::Exists(self.identifier()?))
            }
            Tok::Word(_) => Ok(Expr::Attribute(self.identifier()?)),
            _ => Err(self.error("expected a value, an attribute, a function call or `(`")),
        }
    }

    fn identifier(&mut self) -> Result<Attribute, ParseError> {
        let Tok::Word(w) = self.peek().clone() else {
            return Err(self.error("expected an attribute name"));
        };
        if KEYWORDS.iter().any(|k| w.eq_ignore_ascii_case(k)) {
            return Err(self.error("expected an attribute name"));
        }
        if w.contains('_') {
            return Err(ParseError {
                column: self.column(),
                message: format!(
                    "`{w}` is not an attribute name: attribute names are letters and digits"
                ),
            });
        }
        self.at += 1;
        Ok(Attribute::of(&w.to_ascii_lowercase()))
    }

    fn call(&mut self, name: &str, column: usize) -> Result<Expr, ParseError> {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
        if !valid {
            return Err(ParseError {
                column,
                message: format!(
                    "`{name}` is not a function name: function names are letters and `_`"
                ),
            });
        }
        if name.eq_ignore_ascii_case("CAST") {
            return Err(ParseError {
                column,
                message: "CAST(x AS type) is not CESQL: use INT(x), BOOL(x) or STRING(x)".into(),
            });
        }
        self.at += 2;
        let args = self.nested(|p| {
            let mut args = Vec::new();
            if p.peek() != &Tok::RParen {
                args.push(p.logic()?);
                while p.peek() == &Tok::Comma {
                    p.at += 1;
                    args.push(p.logic()?);
                }
            }
            Ok(args)
        })?;
        self.expect(&Tok::RParen, "`,` or `)` after a function argument")?;
        Ok(Expr::Call {
            function: Function::resolve(name, args.len()),
            args,
            column,
        })
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::Comma => ",",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Equal => "=",
        Tok::NotEqual => "!=",
        Tok::Less => "<",
        Tok::LessEqual => "<=",
        Tok::Greater => ">",
        Tok::GreaterEqual => ">=",
        Tok::Str(_) | Tok::Digits(_) | Tok::Word(_) | Tok::End => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        match parse(text) {
            Ok(p) => panic!("{text} parsed: {:?}", p.expr),
            Err(e) => e,
        }
    }

    #[test]
    fn errors_carry_their_column() {
        let e = err("type LIKE 'a%' AND CAST(amount AS INTEGER) > 100");
        assert_eq!(e.column, 20);
        assert!(e.message.contains("INT(x)"), "{}", e.message);
        assert_eq!(err("a = ").column, 5);
        assert_eq!(err("ABC(").column, 5);
        assert_eq!(err("x LIKE 123").column, 8);
        assert_eq!(err("a = 2147483648").column, 5);
        assert_eq!(err("a b").column, 3);
        assert_eq!(err("my_ext = 1").column, 1);
        assert_eq!(err("x NOT = 1").column, 7);
        assert!(parse("-2147483648 = -2147483648").is_ok());
        let deep = format!("{}1{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(err(&deep).message, "more than 32 parentheses open at once");
        let deep = format!("{}1{}", "ABS(".repeat(33), ")".repeat(33));
        assert_eq!(err(&deep).column, 133);
        let deep = format!("{}true", "NOT ".repeat(300));
        assert!(err(&deep).message.contains("levels deep"));
        let chain = vec!["a = 1"; 300].join(" OR ");
        assert!(err(&chain).message.contains("levels deep"));
        let chain = vec!["a = 1"; 100].join(" OR ");
        assert!(parse(&chain).is_ok());
    }

    #[test]
    fn precedence_follows_the_spec() {
        // NOT binds tighter than LIKE and comparisons, LIKE and IN tighter
        // than arithmetic.
        let p = parse("NOT a = b").unwrap().expr;
        assert!(
            matches!(p, Expr::Binary { op: BinaryOp::Equal, left, .. } if matches!(*left, Expr::Not(_)))
        );
        let p = parse("1 + x LIKE 'a'").unwrap().expr;
        assert!(
            matches!(p, Expr::Binary { op: BinaryOp::Add, right, .. } if matches!(*right, Expr::Like { .. }))
        );
        assert_eq!(parse("a AND b OR c").unwrap().mixed_logic, Some(9));
        assert_eq!(parse("(a AND b) OR c").unwrap().mixed_logic, None);
        assert_eq!(parse("a AND b AND c").unwrap().mixed_logic, None);
    }
}
