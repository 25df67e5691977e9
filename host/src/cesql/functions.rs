//! The built-in functions (spec §3.5) and the casting functions, resolved
//! by name and number of arguments when an expression is parsed.

use std::borrow::Cow;

use super::value::{Cast, Type, Value};
use super::EvalError;

/// A function call's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Function {
    Builtin(Builtin),
    /// No function of this (upper-cased) name takes this many arguments:
    /// calling it is a missing-function error.
    Missing {
        name: String,
        arity: usize,
    },
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Builtin {
    Length,
    Concat,
    ConcatWs,
    Lower,
    Upper,
    Trim,
    Left,
    Right,
    Substring2,
    Substring3,
    Abs,
    Int,
    Bool,
    String,
    IsInt,
    IsBool,
}

/// A parameter: a type to cast the argument to, or any value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Param {
    Of(Type),
    Any,
}

impl Function {
    /// The function `name` (any case) with `arity` arguments.
    pub fn resolve(name: &str, arity: usize) -> Self {
        use Builtin as B;
        let upper = name.to_ascii_uppercase();
        let builtin = match (upper.as_str(), arity) {
            ("LENGTH", 1) => B::Length,
            ("CONCAT", _) => B::Concat,
            ("CONCAT_WS", n) if n >= 1 => B::ConcatWs,
            ("LOWER", 1) => B::Lower,
            ("UPPER", 1) => B::Upper,
            ("TRIM", 1) => B::Trim,
            ("LEFT", 2) => B::Left,
            ("RIGHT", 2) => B::Right,
            ("SUBSTRING", 2) => B::Substring2,
            ("SUBSTRING", 3) => B::Substring3,
            ("ABS", 1) => B::Abs,
            ("INT", 1) => B::Int,
            ("BOOL", 1) => B::Bool,
            ("STRING", 1) => B::String,
            ("IS_INT", 1) => B::IsInt,
            ("IS_BOOL", 1) => B::IsBool,
            _ => return Self::Missing { name: upper, arity },
        };
        Self::Builtin(builtin)
    }
}

impl Builtin {
    /// What the function returns.
    pub fn returns(self) -> Type {
        match self {
            Self::Length | Self::Abs | Self::Int => Type::Integer,
            Self::Bool | Self::IsInt | Self::IsBool => Type::Boolean,
            _ => Type::String,
        }
    }

    /// The type of argument `i`.
    pub fn param(self, i: usize) -> Param {
        match (self, i) {
            (Self::Int | Self::Bool | Self::String | Self::IsInt | Self::IsBool, _) => Param::Any,
            (Self::Left | Self::Right | Self::Substring2 | Self::Substring3, 1 | 2)
            | (Self::Abs, _) => Param::Of(Type::Integer),
            _ => Param::Of(Type::String),
        }
    }

    /// Call the function on arguments already cast to [`Builtin::param`];
    /// an error comes with the function's defined return value.
    pub fn call<'a>(self, args: Vec<Value<'a>>) -> Result<Value<'a>, (Value<'a>, EvalError)> {
        let mut args = args.into_iter();
        let string = |s: String| Value::String(Cow::Owned(s));
        Ok(match self {
            Self::Length => {
                let n = text(take(&mut args)).chars().count();
                Value::Integer(i32::try_from(n).unwrap_or(i32::MAX))
            }
            Self::Concat => string(args.map(text).collect()),
            Self::ConcatWs => {
                let delimiter = text(take(&mut args));
                let parts: Vec<Cow<'a, str>> = args.map(text).collect();
                string(parts.join(&*delimiter))
            }
            Self::Lower => string(text(take(&mut args)).to_lowercase()),
            Self::Upper => string(text(take(&mut args)).to_uppercase()),
            Self::Trim => match text(take(&mut args)) {
                Cow::Borrowed(b) => Value::String(Cow::Borrowed(b.trim())),
                Cow::Owned(o) => string(o.trim().to_owned()),
            },
            Self::Left | Self::Right => {
                let x = text(take(&mut args));
                let y = int(&take(&mut args));
                let Ok(y) = usize::try_from(y) else {
                    let name = if self == Self::Left { "LEFT" } else { "RIGHT" };
                    return Err((
                        Value::String(x),
                        EvalError::Function(format!("{name}: negative length {y}")),
                    ));
                };
                let n = x.chars().count();
                if y >= n {
                    Value::String(x)
                } else if self == Self::Left {
                    string(x.chars().take(y).collect())
                } else {
                    string(x.chars().skip(n - y).collect())
                }
            }
            Self::Substring2 | Self::Substring3 => {
                let x = text(take(&mut args));
                let pos = int(&take(&mut args));
                let len = (self == Self::Substring3).then(|| int(&take(&mut args)));
                return substring(&x, pos, len)
                    .map(string)
                    .map_err(|m| (Type::String.zero(), EvalError::Function(m)));
            }
            Self::Abs => match int(&take(&mut args)).checked_abs() {
                Some(a) => Value::Integer(a),
                None => {
                    return Err((
                        Value::Integer(i32::MAX),
                        EvalError::Math("ABS(-2147483648) overflows".into()),
                    ))
                }
            },
            Self::Int => return take(&mut args).cast(Type::Integer, Cast::Explicit),
            Self::Bool => return take(&mut args).cast(Type::Boolean, Cast::Explicit),
            Self::String => return take(&mut args).cast(Type::String, Cast::Explicit),
            Self::IsInt => {
                Value::Boolean(take(&mut args).cast(Type::Integer, Cast::Explicit).is_ok())
            }
            Self::IsBool => {
                Value::Boolean(take(&mut args).cast(Type::Boolean, Cast::Explicit).is_ok())
            }
        })
    }
}

/// The next argument (the parser resolved the arity).
fn take<'a>(args: &mut impl Iterator<Item = Value<'a>>) -> Value<'a> {
    args.next().unwrap_or(Value::Boolean(false))
}

/// A string argument (arguments are cast before the call).
fn text(v: Value<'_>) -> Cow<'_, str> {
    match v {
        Value::String(s) => s,
        other => Cow::Owned(other.to_string()),
    }
}

/// An integer argument (arguments are cast before the call).
fn int(v: &Value<'_>) -> i32 {
    match v {
        Value::Integer(i) => *i,
        _ => 0,
    }
}

/// `SUBSTRING(x, pos[, len])`: 1-based `pos`, counted from the end when
/// negative; `0` gives the empty string.
fn substring(x: &str, pos: i32, len: Option<i32>) -> Result<String, String> {
    let n = i64::try_from(x.chars().count()).unwrap_or(i64::MAX);
    let pos = i64::from(pos);
    if pos > n || pos < -n {
        return Err(format!(
            "SUBSTRING: position {pos} is outside a string of length {n}"
        ));
    }
    if let Some(len @ ..0) = len {
        return Err(format!("SUBSTRING: negative length {len}"));
    }
    if pos == 0 {
        return Ok(String::new());
    }
    let start = if pos > 0 { pos - 1 } else { n + pos };
    let take = len.map_or(n, i64::from);
    let (Ok(start), Ok(take)) = (usize::try_from(start), usize::try_from(take)) else {
        return Ok(String::new());
    };
    Ok(x.chars().skip(start).take(take).collect())
}
