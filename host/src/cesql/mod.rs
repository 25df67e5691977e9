//! CloudEvents SQL (CESQL) v1.0.0, the `cesql` filter dialect of triggers
//! (the spec: `cesql/spec.md` in cloudevents/spec; proven by its TCK,
//! `tests/cesql-tck/`).
//!
//! [`Expression::parse`] turns text into a tree ([`lexer`], [`parser`]);
//! [`Expression::evaluate`] computes its value and first error against an
//! event ([`eval`], with the [`value`] casts, the [`functions`] and the
//! [`like`] patterns). A [`Filter`] is an expression checked once to be
//! usable as a filter ([`check`]); an event passes when it evaluates to
//! `true` without error.

mod ast;
mod check;
mod eval;
mod functions;
mod lexer;
mod like;
mod parser;
#[cfg(test)]
mod tck;
mod value;

use std::fmt;
use std::sync::Arc;

use crate::event::Event;

pub use self::value::{Type, Value};

/// An expression that does not parse, or that a filter cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct ParseError {
    /// Where, in characters from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// An error raised while evaluating (spec §3.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Division by zero or a result outside 32 bits.
    #[error("math error: {0}")]
    Math(String),
    /// A value that does not cast to the type needed.
    #[error("cast error: {0}")]
    Cast(String),
    /// The event lacks this attribute.
    #[error("the event has no attribute `{0}`")]
    MissingAttribute(String),
    /// No function of this name takes this many arguments.
    #[error("{0}")]
    MissingFunction(String),
    /// A function refused its arguments.
    #[error("function error: {0}")]
    Function(String),
    /// A filter's value is not a boolean (the spec's generic error).
    #[error("the expression's value is a {0}, not a boolean")]
    NotBoolean(Type),
}

/// The kind of an [`EvalError`], as the spec names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// _MathError_.
    Math,
    /// _CastError_.
    Cast,
    /// _MissingAttributeError_.
    MissingAttribute,
    /// _MissingFunctionError_.
    MissingFunction,
    /// _FunctionEvaluationError_.
    FunctionEvaluation,
    /// _GenericError_.
    Generic,
}

impl ErrorKind {
    /// The metric label: `math`, `cast`, `missing_attribute`, ...
    pub fn label(self) -> &'static str {
        match self {
            Self::Math => "math",
            Self::Cast => "cast",
            Self::MissingAttribute => "missing_attribute",
            Self::MissingFunction => "missing_function",
            Self::FunctionEvaluation => "function_evaluation",
            Self::Generic => "generic",
        }
    }
}

impl EvalError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Math(_) => ErrorKind::Math,
            Self::Cast(_) => ErrorKind::Cast,
            Self::MissingAttribute(_) => ErrorKind::MissingAttribute,
            Self::MissingFunction(_) => ErrorKind::MissingFunction,
            Self::Function(_) => ErrorKind::FunctionEvaluation,
            Self::NotBoolean(_) => ErrorKind::Generic,
        }
    }
}

/// A parsed CESQL expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    expr: ast::Expr,
}

impl Expression {
    /// Parse `text` (spec §2).
    ///
    /// # Errors
    /// A [`ParseError`] with its column.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Ok(Self {
            expr: parser::parse(text)?.expr,
        })
    }

    /// The value of the expression on `event` and the first error raised
    /// on the way, if any; never panics.
    pub fn evaluate<'a>(&'a self, event: &'a Event) -> (Value<'a>, Option<EvalError>) {
        match eval::eval(&self.expr, event) {
            Ok(v) => (v, None),
            Err(f) => (f.value, Some(f.error)),
        }
    }
}

/// A CESQL expression checked to be usable as a filter; written and read
/// as its text.
#[derive(Clone)]
pub struct Filter(Arc<(String, Expression)>);

impl Filter {
    /// Parse and check `text`: it must parse, call only functions that
    /// exist, be able to be boolean, and not mix `AND`, `OR` and `XOR`
    /// without parentheses.
    ///
    /// # Errors
    /// A [`ParseError`] with its column.
    pub fn new(text: &str) -> Result<Self, ParseError> {
        let parsed = parser::parse(text)?;
        check::filter(&parsed)?;
        Ok(Self(Arc::new((
            text.to_owned(),
            Expression { expr: parsed.expr },
        ))))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.0 .0
    }

    /// Whether `event` passes: the expression is `true`.
    ///
    /// # Errors
    /// The first evaluation error, or a value that is not a boolean: the
    /// event does not pass (spec §1.2).
    pub fn matches(&self, event: &Event) -> Result<bool, EvalError> {
        match self.0 .1.evaluate(event) {
            (_, Some(e)) => Err(e),
            (Value::Boolean(b), None) => Ok(b),
            (v, None) => Err(EvalError::NotBoolean(v.ty())),
        }
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Filter {}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Filter").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::new(&text)
            .map_err(|e| serde::de::Error::custom(format!("cesql expression `{text}`: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ExtensionValue;

    fn event() -> Event {
        let mut e = Event::new("1", "/orders", "dev.sluice.order");
        e.extensions
            .insert("amount".into(), ExtensionValue::String("250".into()));
        e.extensions
            .insert("big".into(), ExtensionValue::Integer(1 << 40));
        e.extensions
            .insert("flag".into(), ExtensionValue::String("true".into()));
        e
    }

    #[test]
    fn filters_pass_on_true_only() {
        let e = event();
        let m = |text: &str| Filter::new(text).unwrap().matches(&e);
        assert_eq!(
            m("type LIKE 'dev.sluice.%' AND INT(amount) > 100"),
            Ok(true)
        );
        assert_eq!(m("type LIKE 'dev.sluice.%' AND amount > 300"), Ok(false));
        assert_eq!(m("flag = TRUE"), Ok(true));
        assert_eq!(m("big = '1099511627776'"), Ok(true));
        assert_eq!(m("NOT EXISTS subject"), Ok(true));
        // Errors: the event does not pass, and the error says why.
        assert_eq!(
            m("tenant = 'acme'"),
            Err(EvalError::MissingAttribute("tenant".into()))
        );
        assert_eq!(
            m("2147483647 + amount > 0").unwrap_err().kind(),
            ErrorKind::Math
        );
        assert_eq!(
            m("-amount * 100000000 < 0").unwrap_err().kind(),
            ErrorKind::Math
        );
        assert_eq!(m("amount % 0 = 0").unwrap_err().kind(), ErrorKind::Math);
        assert_eq!(m("INT(type) = 1").unwrap_err().kind(), ErrorKind::Cast);
        assert_eq!(m("flag"), Err(EvalError::NotBoolean(Type::String)));
    }

    #[test]
    fn filters_are_checked_once() {
        let err = |text: &str| Filter::new(text).unwrap_err();
        assert_eq!(err("LENGTH(type)").column, 1);
        assert!(err("'a' || 'b'").message.contains("unexpected character"));
        let e = err("type = 'a' AND NOPE(type, 1)");
        assert_eq!(
            (e.column, e.message.as_str()),
            (16, "no function NOPE takes 2 argument(s)")
        );
        assert_eq!(err("CONCAT_WS() = ''").column, 1);
        assert_eq!(err("a = 1 OR b = 2 AND c = 3").column, 16);
        assert!(Filter::new("(a = 1 OR b = 2) AND c = 3").is_ok());
        assert!(Filter::new("myflag").is_ok());
    }

    #[test]
    fn the_string_fast_paths_agree_with_the_general_path() {
        let pairs = [
            ("a = 'v'", "a = CONCAT('v')"),
            ("a <> '5'", "a <> CONCAT('5')"),
            ("a = 'true'", "a = CONCAT('true')"),
            ("a LIKE 'v%'", "CONCAT(a) LIKE 'v%'"),
            ("a NOT LIKE '_'", "CONCAT(a) NOT LIKE '_'"),
        ];
        let values = [
            None,
            Some(ExtensionValue::String("v".into())),
            Some(ExtensionValue::String("vw".into())),
            Some(ExtensionValue::Integer(5)),
            Some(ExtensionValue::Boolean(true)),
        ];
        for value in values {
            let mut e = Event::new("1", "/s", "t");
            if let Some(v) = value.clone() {
                e.extensions.insert("a".into(), v);
            }
            for (fast, general) in pairs {
                let (fast, general) = (
                    Expression::parse(fast).unwrap(),
                    Expression::parse(general).unwrap(),
                );
                assert_eq!(
                    fast.evaluate(&e),
                    general.evaluate(&e),
                    "{value:?} {fast:?}"
                );
            }
        }
    }

    #[test]
    fn the_deepest_expressions_fit_half_a_worker_stack() {
        // Tokio's workers, where filters run and admin PUTs are parsed,
        // have 2 MiB stacks; this runs in 1 MiB, unoptimised.
        let deepest = [
            format!("{}true{}", "(".repeat(32), ")".repeat(32)),
            format!("{}'x'{}", "LOWER(".repeat(32), ")".repeat(32)) + " = 'x'",
            format!("({}true{})", "(NOT ".repeat(31), ")".repeat(31)) + &" AND true".repeat(150),
            format!("{}true", "NOT ".repeat(254)),
            vec!["a = 1"; 250].join(" OR "),
            format!("{}1 = 1", "-".repeat(250)),
        ];
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let e = event();
                for text in &deepest {
                    let f = Filter::new(text).unwrap_or_else(|e| panic!("{text}: {e}"));
                    let _ = f.matches(&e);
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn filters_read_and_write_as_their_text() {
        let f: Filter = serde_json::from_value(serde_json::json!("type = 'x'")).unwrap();
        assert_eq!(serde_json::to_value(&f).unwrap(), "type = 'x'");
        let e = serde_json::from_value::<Filter>(serde_json::json!("type = ")).unwrap_err();
        assert!(e.to_string().contains("column 8"), "{e}");
    }
}
