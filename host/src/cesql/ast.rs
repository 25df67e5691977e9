//! The parsed form of an expression.

use super::functions::Function;
use super::like::Pattern;

/// A context attribute or extension, resolved from its (lower-cased) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Attribute {
    Id,
    Source,
    Type,
    SpecVersion,
    DataContentType,
    DataSchema,
    Subject,
    Time,
    Extension(String),
}

impl Attribute {
    pub fn of(name: &str) -> Self {
        match name {
            "id" => Self::Id,
            "source" => Self::Source,
            "type" => Self::Type,
            "specversion" => Self::SpecVersion,
            "datacontenttype" => Self::DataContentType,
            "dataschema" => Self::DataSchema,
            "subject" => Self::Subject,
            "time" => Self::Time,
            other => Self::Extension(other.to_owned()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Id => "id",
            Self::Source => "source",
            Self::Type => "type",
            Self::SpecVersion => "specversion",
            Self::DataContentType => "datacontenttype",
            Self::DataSchema => "dataschema",
            Self::Subject => "subject",
            Self::Time => "time",
            Self::Extension(name) => name,
        }
    }
}

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
