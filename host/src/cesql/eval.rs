//! Evaluation (spec §3.3–3.6) against one event.
//!
//! Errors follow the TCK: an operator or function whose operand failed
//! returns the zero value of its own type and passes the error up without
//! computing (so `missing / 0` is a missing-attribute error, not a math
//! error, and `true AND (1 / 0 = 0)` is `false`); an error an operator or
//! function raises itself (a failed implicit cast, `ABS` overflow,
//! `LEFT` with a negative length) comes with the value it defines. The
//! first error is kept.

use std::borrow::Cow;

use crate::event::{Event, ExtensionValue};

use super::ast::{Attribute, BinaryOp, Expr, Literal, LogicOp};
use super::functions::{Function, Param};
use super::like::Pattern;
use super::value::{Cast, Type, Value};
use super::EvalError;

/// A value with the error that came with it.
pub(super) struct Fault<'a> {
    pub value: Value<'a>,
    pub error: EvalError,
}

type Out<'a> = Result<Value<'a>, Fault<'a>>;

/// The first error an operator raised itself, while it goes on computing.
struct Own(Option<EvalError>);

impl Own {
    fn cast<'a>(&mut self, v: Value<'a>, to: Type) -> Value<'a> {
        v.cast(to, Cast::Implicit).unwrap_or_else(|(zero, e)| {
            self.raise(e);
            zero
        })
    }

    fn raise(&mut self, e: EvalError) {
        self.0.get_or_insert(e);
    }

    fn finish(self, value: Value<'_>) -> Out<'_> {
        match self.0 {
            None => Ok(value),
            Some(error) => Err(Fault { value, error }),
        }
    }
}

/// Evaluate `e` on `event`. Each kind of node is its own function, so
/// that one level of recursion costs only the frame of the node at hand
/// (unoptimised builds give every local of a function its own slot).
pub(super) fn eval<'a>(e: &'a Expr, event: &'a Event) -> Out<'a> {
    match e {
        Expr::Literal(Literal::Boolean(b)) => Ok(Value::Boolean(*b)),
        Expr::Literal(Literal::Integer(i)) => Ok(Value::Integer(*i)),
        Expr::Literal(Literal::String(s)) => Ok(Value::String(Cow::Borrowed(s))),
        Expr::Attribute(a) => attribute(a, event).ok_or_else(|| missing(a)),
        Expr::Exists(a) => Ok(Value::Boolean(attribute(a, event).is_some())),
        Expr::Not(x) => not(x, event),
        Expr::Negate(x) => negate(x, event),
        Expr::Binary { op, left, right } => binary_node(*op, left, right, event),
        Expr::Logic { op, left, right } => logic(*op, left, right, event),
        Expr::Like {
            value,
            pattern,
            negated,
        } => like(value, pattern, *negated, event),
        Expr::In {
            value,
            set,
            negated,
        } => within(value, set, *negated, event),
        Expr::Call { function, args, .. } => call(function, args, event),
    }
}

/// Evaluate operand `x`; when it fails, its operator returns the zero
/// value of `zero` with that error.
fn operand<'a>(x: &'a Expr, event: &'a Event, zero: Type) -> Out<'a> {
    eval(x, event).map_err(|f| Fault {
        value: zero.zero(),
        error: f.error,
    })
}

#[inline(never)]
fn not<'a>(x: &'a Expr, event: &'a Event) -> Out<'a> {
    let mut own = Own(None);
    let v = operand(x, event, Type::Boolean)?;
    let v = Value::Boolean(!boolean(&own.cast(v, Type::Boolean)));
    own.finish(v)
}

#[inline(never)]
fn negate<'a>(x: &'a Expr, event: &'a Event) -> Out<'a> {
    let mut own = Own(None);
    let v = operand(x, event, Type::Integer)?;
    let v = match integer(&own.cast(v, Type::Integer)).checked_neg() {
        Some(n) => Value::Integer(n),
        None => {
            own.raise(EvalError::Math("-(-2147483648) overflows".into()));
            Value::Integer(0)
        }
    };
    own.finish(v)
}

#[inline(never)]
fn binary_node<'a>(op: BinaryOp, left: &'a Expr, right: &'a Expr, event: &'a Event) -> Out<'a> {
    if let Some(out) = string_equality(op, left, right, event) {
        return out;
    }
    let zero = if op.is_arithmetic() {
        Type::Integer
    } else {
        Type::Boolean
    };
    let mut own = Own(None);
    let l = operand(left, event, zero)?;
    let r = operand(right, event, zero)?;
    let v = binary(op, l, r, &mut own);
    own.finish(v)
}

#[inline(never)]
fn logic<'a>(op: LogicOp, left: &'a Expr, right: &'a Expr, event: &'a Event) -> Out<'a> {
    let mut own = Own(None);
    let l = operand(left, event, Type::Boolean)?;
    let l = boolean(&own.cast(l, Type::Boolean));
    let v = match (op, l) {
        (LogicOp::And, false) => Value::Boolean(false),
        (LogicOp::Or, true) => Value::Boolean(true),
        _ => {
            let r = operand(right, event, Type::Boolean)?;
            let r = boolean(&own.cast(r, Type::Boolean));
            Value::Boolean(match op {
                LogicOp::And => l && r,
                LogicOp::Or => l || r,
                LogicOp::Xor => l != r,
            })
        }
    };
    own.finish(v)
}

#[inline(never)]
fn like<'a>(value: &'a Expr, pattern: &Pattern, negated: bool, event: &'a Event) -> Out<'a> {
    // A string attribute, the common filter: no cast needed.
    if let Expr::Attribute(a) = value {
        match attribute(a, event) {
            None => return Err(missing(a)),
            Some(Value::String(s)) => return Ok(Value::Boolean(pattern.matches(&s) != negated)),
            Some(_) => {}
        }
    }
    let mut own = Own(None);
    let v = operand(value, event, Type::Boolean)?;
    let Value::String(s) = own.cast(v, Type::String) else {
        unreachable!("every value casts to a string")
    };
    let v = Value::Boolean(pattern.matches(&s) != negated);
    own.finish(v)
}

#[inline(never)]
fn within<'a>(value: &'a Expr, set: &'a [Expr], negated: bool, event: &'a Event) -> Out<'a> {
    let mut own = Own(None);
    let v = operand(value, event, Type::Boolean)?;
    let target = v.ty();
    let mut found = false;
    for x in set {
        let y = operand(x, event, Type::Boolean)?;
        // An element that does not cast to the value's type is not equal
        // to it.
        match y.cast(target, Cast::Implicit) {
            Ok(y) => found |= y == v,
            Err((_, e)) => own.raise(e),
        }
    }
    own.finish(Value::Boolean(found != negated))
}

#[inline(never)]
fn call<'a>(function: &Function, args: &'a [Expr], event: &'a Event) -> Out<'a> {
    let f = match function {
        Function::Builtin(f) => *f,
        Function::Missing { name, arity } => {
            return Err(Fault {
                value: Value::Boolean(false),
                error: EvalError::MissingFunction(format!(
                    "no function {name} takes {arity} argument(s)"
                )),
            })
        }
    };
    let mut own = Own(None);
    let mut values = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let v = operand(a, event, f.returns())?;
        values.push(match f.param(i) {
            Param::Any => v,
            Param::Of(t) => own.cast(v, t),
        });
    }
    let v = match f.call(values) {
        Ok(v) => v,
        Err((v, e)) => {
            own.raise(e);
            v
        }
    };
    own.finish(v)
}

/// The error of a missing attribute, with the zero value of the boolean
/// its enclosing operator (or, at the root, the expression) returns.
fn missing(a: &Attribute) -> Fault<'static> {
    Fault {
        value: Value::Boolean(false),
        error: EvalError::MissingAttribute(a.name().to_owned()),
    }
}

/// `attribute = 'literal'` (or `!=`, `<>`) on a string attribute, the
/// common filter, without the general path's casts: the same result.
/// `None` when `e` is not that, or the attribute is not a string.
fn string_equality<'a>(
    op: BinaryOp,
    left: &Expr,
    right: &Expr,
    event: &'a Event,
) -> Option<Out<'a>> {
    let equal = match op {
        BinaryOp::Equal => true,
        BinaryOp::NotEqual => false,
        _ => return None,
    };
    let (Expr::Attribute(a), Expr::Literal(Literal::String(lit))) = (left, right) else {
        return None;
    };
    match attribute(a, event) {
        None => Some(Err(missing(a))),
        Some(Value::String(s)) => Some(Ok(Value::Boolean((*s == **lit) == equal))),
        Some(_) => None,
    }
}

impl BinaryOp {
    fn is_arithmetic(self) -> bool {
        matches!(
            self,
            Self::Add | Self::Subtract | Self::Multiply | Self::Divide | Self::Modulo
        )
    }
}

fn binary<'a>(op: BinaryOp, l: Value<'a>, r: Value<'a>, own: &mut Own) -> Value<'a> {
    use BinaryOp as B;
    if matches!(op, B::Equal | B::NotEqual) {
        // Ambiguous (§3.7): the right operand's type picks the definition.
        let l = own.cast(l, r.ty());
        return Value::Boolean((l == r) == (op == B::Equal));
    }
    let a = integer(&own.cast(l, Type::Integer));
    let b = integer(&own.cast(r, Type::Integer));
    let math = |v: Option<i32>, own: &mut Own| {
        v.map_or_else(
            || {
                own.raise(EvalError::Math(format!(
                    "{a} {} {b} has no 32-bit result",
                    op.symbol()
                )));
                Value::Integer(0)
            },
            Value::Integer,
        )
    };
    match op {
        B::Add => math(a.checked_add(b), own),
        B::Subtract => math(a.checked_sub(b), own),
        B::Multiply => math(a.checked_mul(b), own),
        B::Divide => math(a.checked_div(b), own),
        B::Modulo => math(a.checked_rem(b), own),
        B::Less => Value::Boolean(a < b),
        B::LessEqual => Value::Boolean(a <= b),
        B::Greater => Value::Boolean(a > b),
        B::GreaterEqual => Value::Boolean(a >= b),
        B::Equal | B::NotEqual => unreachable!("handled above"),
    }
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Subtract => "-",
            Self::Multiply => "*",
            Self::Divide => "/",
            Self::Modulo => "%",
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Less => "<",
            Self::LessEqual => "<=",
            Self::Greater => ">",
            Self::GreaterEqual => ">=",
        }
    }
}

fn boolean(v: &Value<'_>) -> bool {
    matches!(v, Value::Boolean(true))
}

fn integer(v: &Value<'_>) -> i32 {
    match v {
        Value::Integer(i) => *i,
        _ => 0,
    }
}

/// Attribute `a` of `event` (§3.2): strings as they are, boolean and
/// integer extensions typed; an integer outside 32 bits is a string.
fn attribute<'a>(a: &Attribute, event: &'a Event) -> Option<Value<'a>> {
    let s = match a {
        Attribute::Id => &event.id,
        Attribute::Source => &event.source,
        Attribute::Type => &event.ty,
        Attribute::SpecVersion => &event.specversion,
        Attribute::DataContentType => event.datacontenttype.as_ref()?,
        Attribute::DataSchema => event.dataschema.as_ref()?,
        Attribute::Subject => event.subject.as_ref()?,
        Attribute::Time => event.time.as_ref()?,
        Attribute::Extension(name) => {
            return Some(match event.extensions.get(name)? {
                ExtensionValue::String(s) => Value::String(Cow::Borrowed(s)),
                ExtensionValue::Boolean(b) => Value::Boolean(*b),
                ExtensionValue::Integer(i) => match i32::try_from(*i) {
                    Ok(i) => Value::Integer(i),
                    Err(_) => Value::String(Cow::Owned(i.to_string())),
                },
            })
        }
    };
    Some(Value::String(Cow::Borrowed(s)))
}
