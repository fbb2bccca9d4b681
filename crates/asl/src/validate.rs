//! The rules AWS enforces at CreateStateMachine and ValidateStateMachineDefinition, with its
//! error codes and message text.
//!
//! Diagnostics are joined as AWS joins them: `Invalid State Machine Definition: 'CODE:
//! message at /path, CODE: ...'`. They come in phases, and the first phase that finds
//! anything is reported: the schema of the machine and of each state (`schema`, `choice`,
//! `retry`, `resource`, `jsonata_refs`), then the Map `Label` rule (which AWS reports as a
//! Python `ValueError` quoting the definition, see `text`), then transitions and names
//! (`graph`).

mod choice;
mod graph;
mod jsonata_refs;
mod resource;
mod retry;
mod schema;
mod text;

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{Diagnostic, ValidationError};

/// STANDARD or EXPRESS: some rules differ (`.sync` and `.waitForTaskToken` are Standard-only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MachineType {
    #[default]
    Standard,
    Express,
}

impl MachineType {
    /// `STANDARD` or `EXPRESS`, as AWS's API spells the type.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "STANDARD" => Some(Self::Standard),
            "EXPRESS" => Some(Self::Express),
            _ => None,
        }
    }
}

/// The query language a state evaluates its fields with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum QueryLanguage {
    #[default]
    JSONPath,
    JSONata,
}

/// Validates a parsed definition. Every diagnostic of the first failing phase, as AWS
/// reports it.
pub fn validate(definition: &Value, machine_type: MachineType) -> Result<(), ValidationError> {
    check(definition, machine_type, None)
}

/// Validates definition text as sent to CreateStateMachine: JSON syntax and duplicate keys
/// first, then [`validate`]. Messages that quote the definition quote this text.
pub fn validate_text(text: &str, machine_type: MachineType) -> Result<(), ValidationError> {
    if text.trim().is_empty() {
        return validate(&Value::Null, machine_type);
    }
    let definition = parse_strict(text).map_err(|e| {
        let (message, location) = text::jackson_error(text, &e);
        ValidationError::definition(format!("INVALID_JSON_DESCRIPTION: {message} at {location}"))
    })?;
    check(&definition, machine_type, Some(text))
}

/// Validates one state as the TestState API does: the state's own schema, under the name
/// `StateName`; its transitions are not checked.
pub fn validate_state(state: &Value, machine_type: MachineType) -> Result<(), ValidationError> {
    let mut d = Diagnostics::default();
    let mut states = Map::new();
    states.insert("StateName".into(), state.clone());
    check_states(
        &states,
        "",
        QueryLanguage::JSONPath,
        QueryLanguage::JSONPath,
        machine_type,
        &mut d,
    );
    d.finish()
}

fn check(
    definition: &Value,
    machine_type: MachineType,
    raw: Option<&str>,
) -> Result<(), ValidationError> {
    let mut d = Diagnostics::default();
    let Some(root) = definition.as_object() else {
        d.push(
            "SCHEMA_VALIDATION_FAILED",
            "Definition must be a valid JSON object",
            None,
        );
        return d.finish();
    };
    for key in root.keys() {
        if !matches!(
            key.as_str(),
            "Comment" | "StartAt" | "States" | "TimeoutSeconds" | "Version" | "QueryLanguage"
        ) {
            d.schema(format!("Field '{key}' is not supported"), "/");
        }
    }
    let machine_ql = match root.get("QueryLanguage") {
        None => QueryLanguage::JSONPath,
        Some(v) => query_language(v, "/QueryLanguage", &mut d),
    };
    if let Some(t) = root.get("TimeoutSeconds") {
        schema::check_bounds(t, "/TimeoutSeconds", schema::SECONDS_FROM_1, &mut d);
    }
    if let Some(v) = root.get("Version")
        && v.as_str() != Some("1.0")
    {
        d.schema(
            "The field 'Version' should have one of these values: [1.0]",
            "/Version",
        );
    }
    check_container(root, "", machine_ql, machine_ql, machine_type, &mut d);
    d.finish()?;

    if let Some(message) = label_error(root) {
        let quoted = raw.map_or_else(|| text::py_json_dumps(definition), str::to_owned);
        return Err(ValidationError::new(
            "InvalidDefinition",
            format!(
                "Error=ValueError Args=[{}] in definition '{quoted}'.",
                text::py_repr(&message)
            ),
        ));
    }

    graph::check(root, "", &mut d);
    graph::check_duplicates(root, "", &mut HashSet::new(), &mut HashSet::new(), &mut d);
    d.finish()
}

/// A `QueryLanguage` value: only the exact string `JSONPath` selects JSONPath; any other
/// value is reported and read as JSONata, as AWS does.
fn query_language(v: &Value, at: &str, d: &mut Diagnostics) -> QueryLanguage {
    match v.as_str() {
        Some("JSONPath") => QueryLanguage::JSONPath,
        Some("JSONata") => QueryLanguage::JSONata,
        _ => {
            d.schema(
                "The field 'QueryLanguage' should have one of these values: [JSONPath, JSONata]",
                at,
            );
            QueryLanguage::JSONata
        }
    }
}

/// A machine, a Parallel branch or a Map item processor at `prefix`.
fn check_container(
    container: &Map<String, Value>,
    prefix: &str,
    ql: QueryLanguage,
    machine_ql: QueryLanguage,
    machine_type: MachineType,
    d: &mut Diagnostics,
) {
    let here = if prefix.is_empty() { "/" } else { prefix };
    let missing: Vec<&str> = ["States", "StartAt"]
        .into_iter()
        .filter(|f| !container.contains_key(*f))
        .collect();
    if !missing.is_empty() {
        d.schema(
            format!("These fields are required: [{}]", missing.join(", ")),
            here,
        );
    }
    if !prefix.is_empty() {
        for key in container.keys() {
            let processor_field = (prefix.ends_with("/ItemProcessor")
                || prefix.ends_with("/Iterator"))
                && key == "ProcessorConfig";
            if !matches!(key.as_str(), "StartAt" | "States" | "Comment") && !processor_field {
                d.schema(format!("Field '{key}' is not supported"), here);
            }
        }
    }
    if let Some(start) = container.get("StartAt")
        && !start.is_string()
    {
        d.schema(
            "The value for the field 'StartAt' must be a STRING",
            &format!("{prefix}/StartAt"),
        );
    }
    match container.get("States") {
        None => {}
        Some(Value::Object(states)) if states.is_empty() => {
            d.schema("Value cannot be empty", &format!("{prefix}/States"))
        }
        Some(Value::Object(states)) => {
            check_states(states, prefix, ql, machine_ql, machine_type, d)
        }
        Some(_) => d.schema(
            "The value for the field 'States' must be an OBJECT",
            &format!("{prefix}/States"),
        ),
    }
}

fn check_states(
    states: &Map<String, Value>,
    prefix: &str,
    ql: QueryLanguage,
    machine_ql: QueryLanguage,
    machine_type: MachineType,
    d: &mut Diagnostics,
) {
    for (name, state) in states {
        let path = format!("{prefix}/States/{name}");
        if name.chars().count() > 80 {
            d.push(
                "INVALID_STATE_NAME",
                format!("Invalid State name: State '{name}' exceeds the 80-character limit allowed by the service"),
                Some(path.clone()),
            );
        }
        let Some(obj) = state.as_object() else {
            d.schema("The value must be an OBJECT", &path);
            continue;
        };
        let state_ql = match obj.get("QueryLanguage") {
            None => ql,
            Some(v) => query_language(v, &format!("{path}/QueryLanguage"), d),
        };
        if machine_ql == QueryLanguage::JSONata && state_ql == QueryLanguage::JSONPath {
            d.schema(
                "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
                &path,
            );
        }
        schema::check_state(
            &schema::StateCx {
                path: path.clone(),
                state: obj,
                ql: state_ql,
                machine_type,
            },
            d,
        );
        // States in a branch or item processor inherit the machine's language, not the
        // enclosing state's.
        for (nested, nested_path) in graph::nested_containers(state, &path) {
            check_container(
                nested,
                &nested_path,
                machine_ql,
                machine_ql,
                machine_type,
                d,
            );
        }
    }
}

/// The Map `Label` rule, AWS's first failure in document order.
fn label_error(container: &Map<String, Value>) -> Option<String> {
    let states = container.get("States")?.as_object()?;
    for state in states.values() {
        if let Some(label) = state.get("Label").and_then(Value::as_str)
            && let Some(message) = check_label(label)
        {
            return Some(message);
        }
        for (nested, _) in graph::nested_containers(state, "") {
            if let Some(message) = label_error(nested) {
                return Some(message);
            }
        }
    }
    None
}

fn check_label(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("Label cannot be empty".into());
    }
    if label.chars().count() > 40 {
        return Some("Label cannot exceed 40 characters".into());
    }
    let invalid = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
    };
    label.chars().find(|c| invalid(*c)).map(|c| {
        format!(
            "Label contains invalid character: {}",
            text::py_repr(&c.to_string())
        )
    })
}

/// Parses JSON text, refusing duplicate object keys as AWS does.
fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    struct Strict;
    impl<'de> DeserializeSeed<'de> for Strict {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
            de.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Strict {
        type Value = Value;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(v.into())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = vec![];
            while let Some(v) = seq.next_element_seed(Strict)? {
                items.push(v);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
            let mut map = Map::new();
            while let Some(key) = access.next_key::<String>()? {
                if map.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!("Duplicate field '{key}'")));
                }
                let v = access.next_value_seed(Strict)?;
                map.insert(key, v);
            }
            Ok(Value::Object(map))
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The diagnostics of one phase, in the order AWS lists them.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    fn push(&mut self, code: &'static str, message: impl Into<String>, location: Option<String>) {
        self.items.push(Diagnostic {
            code: code.to_owned(),
            message: message.into(),
            location,
        });
    }

    fn schema(&mut self, message: impl Into<String>, location: &str) {
        self.push(
            "SCHEMA_VALIDATION_FAILED",
            message,
            Some(location.to_owned()),
        );
    }

    fn finish(&mut self) -> Result<(), ValidationError> {
        if self.items.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.items);
        let joined = items
            .iter()
            .map(|d| {
                format!(
                    "{}: {} at {}",
                    d.code,
                    d.message,
                    d.location.as_deref().unwrap_or("null")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut e = ValidationError::definition(joined);
        e.diagnostics = items;
        Err(e)
    }
}

#[cfg(test)]
mod tests;
