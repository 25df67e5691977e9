//! Checks a filter expression once, before it is used: what the spec lets
//! an engine catch before evaluation (§3.3), and what Sluice refuses.

use super::ast::{BinaryOp, Expr, Literal};
use super::functions::Function;
use super::parser::Parsed;
use super::value::Type;
use super::ParseError;

/// Refuse calls no function takes, expressions whose value can only be an
/// integer or a string (a filter needs a boolean), and `AND`, `OR`, `XOR`
/// mixed without parentheses (CESQL implementations group them
/// differently).
pub(super) fn filter(p: &Parsed) -> Result<(), ParseError> {
    if let Some(column) = p.mixed_logic {
        return Err(ParseError {
            column,
            message:
                "AND, OR and XOR mixed without parentheses: write (a AND b) OR c or a AND (b OR c)"
                    .into(),
        });
    }
    calls(&p.expr)?;
    match static_type(&p.expr) {
        Some(t @ (Type::Integer | Type::String)) => Err(ParseError {
            column: 1,
            message: format!("a filter must be a boolean expression, and this one is {t}"),
        }),
        _ => Ok(()),
    }
}

fn calls(e: &Expr) -> Result<(), ParseError> {
    match e {
        Expr::Literal(_) | Expr::Attribute(_) | Expr::Exists(_) => Ok(()),
        Expr::Not(x) | Expr::Negate(x) | Expr::Like { value: x, .. } => calls(x),
        Expr::Binary { left, right, .. } | Expr::Logic { left, right, .. } => {
            calls(left)?;
            calls(right)
        }
        Expr::In { value, set, .. } => {
            calls(value)?;
            set.iter().try_for_each(calls)
        }
        Expr::Call {
            function,
            args,
            column,
        } => {
            if let Function::Missing { name, arity } = function {
                return Err(ParseError {
                    column: *column,
                    message: format!("no function {name} takes {arity} argument(s)"),
                });
            }
            args.iter().try_for_each(calls)
        }
    }
}

/// The type `e` always has; `None` for an attribute, whose type is the
/// event's.
fn static_type(e: &Expr) -> Option<Type> {
    Some(match e {
        Expr::Literal(Literal::Boolean(_)) => Type::Boolean,
        Expr::Literal(Literal::Integer(_)) | Expr::Negate(_) => Type::Integer,
        Expr::Literal(Literal::String(_)) => Type::String,
        Expr::Attribute(_) => return None,
        Expr::Binary {
            op:
                BinaryOp::Add
                | BinaryOp::Subtract
                | BinaryOp::Multiply
                | BinaryOp::Divide
                | BinaryOp::Modulo,
            ..
        } => Type::Integer,
        Expr::Call {
            function: Function::Builtin(f),
            ..
        } => f.returns(),
        _ => Type::Boolean,
    })
}
