//! CESQL values and types (spec §3.1) and the casts between them (§3.7).

use std::borrow::Cow;
use std::fmt;

use super::EvalError;

/// One of CESQL's three primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `true` or `false`.
    Boolean,
    /// A signed 32-bit integer.
    Integer,
    /// A sequence of Unicode characters.
    String,
}

impl Type {
    /// The type's zero value: `false`, `0` or `""` (§3.1), what an
    /// operator or function returns beside an error.
    pub fn zero(self) -> Value<'static> {
        match self {
            Self::Boolean => Value::Boolean(false),
            Self::Integer => Value::Integer(0),
            Self::String => Value::String(Cow::Borrowed("")),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::String => "string",
        })
    }
}

/// A value during evaluation; strings borrow from the event or the
/// expression where they can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// A boolean.
    Boolean(bool),
    /// A 32-bit integer.
    Integer(i32),
    /// A string.
    String(Cow<'a, str>),
}

/// Whether a cast was written (`INT(x)`, `BOOL(x)`, `STRING(x)`) or is
/// implied by an operator's or a function's parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cast {
    /// A casting function: every cast of the §3.7 table.
    Explicit,
    /// An operand or argument: the same, except that an integer does not
    /// become a boolean (the official TCK: `NOT 10` is a cast error).
    Implicit,
}

impl<'a> Value<'a> {
    /// The value's type.
    pub fn ty(&self) -> Type {
        match self {
            Self::Boolean(_) => Type::Boolean,
            Self::Integer(_) => Type::Integer,
            Self::String(_) => Type::String,
        }
    }

    /// The value as `to` (§3.7); a cast that fails gives the zero value of
    /// `to` and a cast error.
    ///
    /// # Errors
    /// [`EvalError::Cast`], with the zero value of `to`.
    pub(super) fn cast(self, to: Type, how: Cast) -> Result<Self, (Self, EvalError)> {
        let fail = |v: &Self| {
            Err((
                to.zero(),
                EvalError::Cast(format!("cannot cast {} {v} to {to}", v.ty())),
            ))
        };
        match (self, to) {
            (v, t) if v.ty() == t => Ok(v),
            (Self::Integer(i), Type::String) => Ok(Self::String(Cow::Owned(i.to_string()))),
            (Self::Boolean(b), Type::String) => Ok(Self::String(Cow::Borrowed(bool_str(b)))),
            (Self::Boolean(b), Type::Integer) => Ok(Self::Integer(i32::from(b))),
            (Self::Integer(i), Type::Boolean) if how == Cast::Explicit => Ok(Self::Boolean(i != 0)),
            (Self::String(s), Type::Integer) => match s.parse::<i32>() {
                Ok(i) => Ok(Self::Integer(i)),
                Err(_) => fail(&Self::String(s)),
            },
            (Self::String(s), Type::Boolean) => {
                if s.eq_ignore_ascii_case("true") {
                    Ok(Self::Boolean(true))
                } else if s.eq_ignore_ascii_case("false") {
                    Ok(Self::Boolean(false))
                } else {
                    fail(&Self::String(s))
                }
            }
            (v, _) => fail(&v),
        }
    }
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Boolean(b) => f.write_str(bool_str(*b)),
            Self::Integer(i) => write!(f, "{i}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value<'_> {
        Value::String(Cow::Borrowed(x))
    }

    #[test]
    fn casts_follow_the_table() {
        let ok = |v: Value<'static>, t, how| v.cast(t, how).unwrap();
        assert_eq!(
            ok(Value::Integer(-12), Type::String, Cast::Implicit),
            s("-12")
        );
        assert_eq!(
            ok(Value::Boolean(true), Type::Integer, Cast::Implicit),
            Value::Integer(1)
        );
        assert_eq!(
            ok(s("+7"), Type::Integer, Cast::Implicit),
            Value::Integer(7)
        );
        assert_eq!(
            ok(s("FaLsE"), Type::Boolean, Cast::Implicit),
            Value::Boolean(false)
        );
        assert_eq!(
            ok(Value::Integer(5), Type::Boolean, Cast::Explicit),
            Value::Boolean(true)
        );
        for (v, t, how) in [
            (Value::Integer(5), Type::Boolean, Cast::Implicit),
            (s("2147483648"), Type::Integer, Cast::Explicit),
            (s(" 1"), Type::Integer, Cast::Explicit),
            (s("yes"), Type::Boolean, Cast::Explicit),
        ] {
            let (zero, e) = v.cast(t, how).unwrap_err();
            assert_eq!(zero, t.zero());
            assert!(matches!(e, EvalError::Cast(_)));
        }
    }
}
