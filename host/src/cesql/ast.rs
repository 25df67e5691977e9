//! The parsed form of an expression.

use super::functions::Function;
use super::like::Pattern;

/// A context attribute or extension, resolved from its (lower-cased) name.
pub(super) use crate::event::AttributeName as Attribute;

/// A literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Literal {
    Boolean(bool),
    Integer(i32),
    String(String),
}

/// `+ - * / %` and the comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
}

/// `AND`, `OR`, `XOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LogicOp {
    And,
    Or,
    Xor,
}

/// An expression node; `column` fields point into the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expr {
    Literal(Literal),
    Attribute(Attribute),
    Exists(Attribute),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Logic {
        op: LogicOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Like {
        value: Box<Expr>,
        pattern: Pattern,
        negated: bool,
    },
    In {
        value: Box<Expr>,
        set: Vec<Expr>,
        negated: bool,
    },
    Call {
        function: Function,
        args: Vec<Expr>,
        column: usize,
    },
}
