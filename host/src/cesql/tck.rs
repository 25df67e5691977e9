//! The official CESQL conformance suite (`tests/cesql-tck/`, vendored from
//! cloudevents/spec): every case of every file must pass.

use std::path::Path;

use serde_json::Value as Json;

use super::{ErrorKind, Expression, Value};
use crate::event::{Event, ExtensionValue};

/// The event of a case: `event` as given, or a valid event with
/// `eventOverrides` applied.
fn event_of(case: &Json) -> Event {
    let (base, attrs) = match (case.get("event"), case.get("eventOverrides")) {
        (Some(e), _) => (Event::new("", "", ""), e.clone()),
        (None, Some(o)) => (Event::new("tck-id", "/tck", "tck.type"), o.clone()),
        (None, None) => (Event::new("tck-id", "/tck", "tck.type"), Json::Null),
    };
    let mut e = base;
    for (k, v) in attrs.as_object().into_iter().flatten() {
        let text = || match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        match k.as_str() {
            "datacontenttype" => e.datacontenttype = Some(text()),
            name => {
                if let Some(ext) = e.set_context_attribute(name, text()) {
                    let value = match v {
                        Json::Bool(b) => ExtensionValue::Boolean(*b),
                        Json::Number(n) => ExtensionValue::Integer(n.as_i64().unwrap()),
                        _ => ExtensionValue::String(ext),
                    };
                    e.extensions.insert(name.to_owned(), value);
                }
            }
        }
    }
    e.validate().unwrap();
    e
}

fn kind(name: &str) -> Option<ErrorKind> {
    Some(match name {
        "math" => ErrorKind::Math,
        "cast" => ErrorKind::Cast,
        "missingAttribute" => ErrorKind::MissingAttribute,
        "missingFunction" => ErrorKind::MissingFunction,
        "functionEvaluation" => ErrorKind::FunctionEvaluation,
        "generic" => ErrorKind::Generic,
        _ => return None,
    })
}

fn json_of(v: &Value<'_>) -> Json {
    match v {
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::String(s) => Json::String(s.to_string()),
    }
}

/// Run one case; `Err` says how it failed.
fn run(case: &Json) -> Result<(), String> {
    let text = case["expression"].as_str().ok_or("no expression")?;
    let want_error = case.get("error").and_then(Json::as_str);
    let parsed = Expression::parse(text);
    if want_error == Some("parse") {
        return match parsed {
            Err(_) => Ok(()),
            Ok(_) => Err("parsed, but the case wants a parse error".into()),
        };
    }
    let expr = parsed.map_err(|e| format!("does not parse: {e}"))?;
    let event = event_of(case);
    let (value, error) = expr.evaluate(&event);
    if let Some(want) = case.get("result") {
        let got = json_of(&value);
        if &got != want {
            return Err(format!("result {got}, want {want} (error {error:?})"));
        }
    }
    let want_kind = match want_error {
        None => None,
        Some(k) => Some(kind(k).ok_or_else(|| format!("unknown error kind {k}"))?),
    };
    let got_kind = error.as_ref().map(super::EvalError::kind);
    if got_kind != want_kind {
        return Err(format!("error {error:?}, want {want_error:?}"));
    }
    Ok(())
}

#[test]
fn every_tck_case_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cesql-tck/json");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 18, "{files:?}");
    let (mut cases, mut failures) = (0, Vec::new());
    for file in &files {
        let suite: Json = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        for case in suite["tests"].as_array().unwrap() {
            cases += 1;
            if let Err(why) = run(case) {
                failures.push(format!(
                    "{} / {} `{}`: {why}",
                    suite["name"], case["name"], case["expression"]
                ));
            }
        }
    }
    assert_eq!(cases, 275);
    assert!(
        failures.is_empty(),
        "{} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
