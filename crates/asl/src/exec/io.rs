//! A state's input and output processing, in either query language: JSONPath's InputPath →
//! Parameters → (work) → ResultSelector → ResultPath → OutputPath, or JSONata's Arguments →
//! (work) → Output, with `Assign` in both.

use std::cell::RefCell;

use serde_json::{Map, Value, json};

use crate::definition::{Catcher, Common, QueryLanguage};
use crate::env::{Host, Scope};
use crate::error::Failure;
use crate::{jsonata, jsonpath};

pub(super) struct Io<'a> {
    pub lang: QueryLanguage,
    pub common: &'a Common,
    /// The state's raw input.
    pub input: &'a Value,
    pub context: &'a Value,
    pub vars: &'a Map<String, Value>,
    /// Where TestState's inspection data is collected, when asked for.
    pub inspect: Option<&'a RefCell<Map<String, Value>>>,
}

/// A state's output, and the variables it assigned (applied after the state, all at once).
pub(super) struct Finished {
    pub output: Value,
    pub assigned: Option<Map<String, Value>>,
}

impl<'a> Io<'a> {
    /// Notes a stage's value for inspection (as JSON text, the first value of each stage).
    fn note(&self, stage: &str, value: &Value) {
        if let Some(cell) = self.inspect {
            cell.borrow_mut()
                .entry(stage.to_string())
                .or_insert_with(|| Value::String(value.to_string()));
        }
    }

    pub fn scope<'b>(&'b self, input: &'b Value) -> Scope<'b> {
        Scope {
            input,
            context: self.context,
            vars: self.vars,
        }
    }

    /// `$states` for JSONata: input and context, plus `result` / `errorOutput` when known.
    pub fn states(&self, extra: &[(&str, &Value)]) -> Value {
        let mut m = Map::new();
        m.insert("input".into(), self.input.clone());
        m.insert("context".into(), self.context.clone());
        for (k, v) in extra {
            m.insert((*k).to_string(), (*v).clone());
        }
        Value::Object(m)
    }

    /// After InputPath (JSONPath); the raw input in JSONata.
    pub fn effective_input(&self) -> Result<Value, Failure> {
        if self.lang == QueryLanguage::Jsonata {
            return Ok(self.input.clone());
        }
        let effective = path_field(
            self.common.input_path.as_ref(),
            &self.scope(self.input),
            self.input,
        )?;
        self.note("afterInputPath", &effective);
        Ok(effective)
    }

    /// The input for the state's work: Parameters (JSONPath) or Arguments (JSONata).
    pub fn parameters(&self, effective: &Value, host: &mut dyn Host) -> Result<Value, Failure> {
        let stage = match self.lang {
            QueryLanguage::JsonPath => "afterParameters",
            QueryLanguage::Jsonata => "afterArguments",
        };
        let value = self.parameters_unnoted(effective, host)?;
        self.note(stage, &value);
        Ok(value)
    }

    fn parameters_unnoted(&self, effective: &Value, host: &mut dyn Host) -> Result<Value, Failure> {
        match self.lang {
            QueryLanguage::JsonPath => match &self.common.parameters {
                Some(p) => jsonpath::eval_payload(p, &self.scope(effective), host),
                None => Ok(effective.clone()),
            },
            QueryLanguage::Jsonata => match &self.common.arguments {
                Some(a) => {
                    jsonata::eval_template(a, "Arguments", &self.states(&[]), self.vars, host)
                }
                None => Ok(effective.clone()),
            },
        }
    }

    /// Turns the state's result into its output. `result` is `None` for states that produce no
    /// result of their own (Wait, Choice, Succeed; JSONata Pass): their output is their input.
    pub fn finish(&self, result: Option<Value>, host: &mut dyn Host) -> Result<Finished, Failure> {
        match self.lang {
            QueryLanguage::JsonPath => {
                let effective = self.effective_input()?;
                if let Some(r) = &result {
                    self.note("result", r);
                }
                let result = match (result, &self.common.result_selector) {
                    (Some(r), Some(sel)) => {
                        Some(jsonpath::eval_payload(sel, &self.scope(&r), host)?)
                    }
                    (r, _) => r,
                };
                if let Some(r) = &result {
                    self.note("afterResultSelector", r);
                }
                let assigned = match &self.common.assign {
                    Some(a) => {
                        let base = result.as_ref().unwrap_or(&effective);
                        Some(as_map(jsonpath::eval_payload(a, &self.scope(base), host)?))
                    }
                    None => None,
                };
                let merged = match result {
                    Some(r) => jsonpath::apply_result_path(
                        self.input,
                        self.common.result_path.as_ref(),
                        r,
                    )?,
                    None => effective,
                };
                self.note("afterResultPath", &merged);
                let output = path_field(
                    self.common.output_path.as_ref(),
                    &self.scope(&merged),
                    &merged,
                )?;
                Ok(Finished { output, assigned })
            }
            QueryLanguage::Jsonata => {
                if let Some(r) = &result {
                    self.note("result", r);
                }
                let extra: Vec<(&str, &Value)> = result.iter().map(|r| ("result", r)).collect();
                let states = self.states(&extra);
                let assigned = match &self.common.assign {
                    Some(a) => Some(as_map(jsonata::eval_template(
                        a, "Assign", &states, self.vars, host,
                    )?)),
                    None => None,
                };
                let output = match &self.common.output {
                    Some(o) => jsonata::eval_template(o, "Output", &states, self.vars, host)?,
                    None => result.unwrap_or_else(|| self.input.clone()),
                };
                Ok(Finished { output, assigned })
            }
        }
    }

    /// The output a Catch passes to its `Next` state.
    pub fn caught(
        &self,
        catcher: &Catcher,
        error_output: Value,
        host: &mut dyn Host,
    ) -> Result<Finished, Failure> {
        match self.lang {
            QueryLanguage::JsonPath => {
                let assigned = match &catcher.assign {
                    Some(a) => Some(as_map(jsonpath::eval_payload(
                        a,
                        &self.scope(&error_output),
                        host,
                    )?)),
                    None => None,
                };
                let output = jsonpath::apply_result_path(
                    self.input,
                    catcher.result_path.as_ref(),
                    error_output,
                )?;
                Ok(Finished { output, assigned })
            }
            QueryLanguage::Jsonata => {
                let states = self.states(&[("errorOutput", &error_output)]);
                let assigned = match &catcher.assign {
                    Some(a) => Some(as_map(jsonata::eval_template(
                        a, "Assign", &states, self.vars, host,
                    )?)),
                    None => None,
                };
                let output = match &catcher.output {
                    Some(o) => jsonata::eval_template(o, "Output", &states, self.vars, host)?,
                    None => error_output,
                };
                Ok(Finished { output, assigned })
            }
        }
    }
}

/// InputPath / OutputPath: absent keeps the value, `null` gives `{}`, a path selects.
fn path_field(field: Option<&Value>, scope: &Scope, value: &Value) -> Result<Value, Failure> {
    match field {
        None => Ok(value.clone()),
        Some(Value::Null) => Ok(json!({})),
        Some(Value::String(p)) => jsonpath::select(Some(p), scope),
        Some(other) => Err(Failure::runtime(format!("invalid path {other}"))),
    }
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
