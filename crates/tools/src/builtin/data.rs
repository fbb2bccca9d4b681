//! `data_analysis`: descriptive statistics, group-by with aggregates, and comparisons between
//! groups or columns, over CSV text or JSON records.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::registry::{InvokerSpec, ToolSpec};
use crate::{Builtin, Policy, ToolContext};

pub struct DataAnalysis;

/// A table: column names and rows of JSON values (CSV cells that read as numbers are numbers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Map<String, Value>>,
}

impl Table {
    pub fn from_csv(text: &str) -> std::result::Result<Self, String> {
        let mut r = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns: Vec<String> = r
            .headers()
            .map_err(|e| format!("csv: {e}"))?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut rows = Vec::new();
        for (i, rec) in r.records().enumerate() {
            let rec = rec.map_err(|e| format!("csv row {}: {e}", i + 2))?;
            let mut row = Map::new();
            for (c, cell) in columns.iter().zip(rec.iter()) {
                let v = if cell.is_empty() {
                    Value::Null
                } else if let Ok(n) = cell.parse::<f64>() {
                    json!(n)
                } else {
                    json!(cell)
                };
                row.insert(c.clone(), v);
            }
            rows.push(row);
        }
        Ok(Self { columns, rows })
    }

    pub fn from_records(records: &[Value]) -> std::result::Result<Self, String> {
        let mut columns: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let o = r
                .as_object()
                .ok_or_else(|| format!("record {i} is not an object"))?;
            for k in o.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
            rows.push(o.clone());
        }
        Ok(Self { columns, rows })
    }

    fn numbers(&self, column: &str, rows: &[&Map<String, Value>]) -> Vec<f64> {
        rows.iter().filter_map(|r| number(r.get(column)?)).collect()
    }

    fn is_numeric(&self, column: &str) -> bool {
        let mut any = false;
        for r in &self.rows {
            match r.get(column) {
                None | Some(Value::Null) => {}
                Some(v) if number(v).is_some() => any = true,
                Some(_) => return false,
            }
        }
        any
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The `p`-th percentile (0..=100) of sorted values, interpolating linearly between ranks
/// (numpy's default).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// count, mean, median, min, max, sample standard deviation and percentiles.
pub fn describe(values: &[f64], percentiles: &[f64]) -> Value {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return json!({"count": 0});
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let stddev = (n > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
    let mut ps = Map::new();
    for p in percentiles {
        ps.insert(format!("p{p}"), json!(percentile(&v, *p)));
    }
    json!({
        "count": n,
        "mean": mean,
        "median": percentile(&v, 50.0),
        "min": v[0],
        "max": v[n - 1],
        "stddev": stddev,
        "percentiles": ps,
    })
}

fn aggregate(op: &str, values: &[f64], rows: usize) -> std::result::Result<Value, String> {
    Ok(match op {
        "count" => json!(rows),
        "sum" => json!(values.iter().sum::<f64>()),
        "mean" | "avg" => {
            if values.is_empty() {
                Value::Null
            } else {
                json!(values.iter().sum::<f64>() / values.len() as f64)
            }
        }
        "min" => json!(values.iter().copied().reduce(f64::min)),
        "max" => json!(values.iter().copied().reduce(f64::max)),
        "median" => {
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            json!(percentile(&v, 50.0))
        }
        other => {
            return Err(format!(
                "unknown aggregate \"{other}\" (sum, mean, count, min, max, median)"
            ));
        }
    })
}

/// A group's key values and its rows.
type Group<'a> = (Vec<Value>, Vec<&'a Map<String, Value>>);

fn key_of(row: &Map<String, Value>, by: &[String]) -> Vec<Value> {
    by.iter()
        .map(|c| row.get(c).cloned().unwrap_or(Value::Null))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Runs an analysis request (see the tool's input schema) on a table.
pub fn analyse(table: &Table, req: &Value) -> std::result::Result<Value, String> {
    let all: Vec<&Map<String, Value>> = table.rows.iter().collect();
    let check = |c: &str| {
        if table.columns.iter().any(|k| k == c) {
            Ok(())
        } else {
            Err(format!(
                "unknown column \"{c}\" (columns: {})",
                table.columns.join(", ")
            ))
        }
    };
    let mut out = Map::new();
    out.insert("rows".into(), json!(table.rows.len()));
    out.insert("columns".into(), json!(table.columns));
    let percentiles: Vec<f64> = req
        .get("percentiles")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_else(|| vec![25.0, 75.0, 90.0, 95.0, 99.0]);
    let describe_cols = match req.get("describe") {
        Some(v) => strings(v),
        None => table
            .columns
            .iter()
            .filter(|c| table.is_numeric(c))
            .cloned()
            .collect(),
    };
    let mut d = Map::new();
    for c in &describe_cols {
        check(c)?;
        d.insert(c.clone(), describe(&table.numbers(c, &all), &percentiles));
    }
    out.insert("describe".into(), Value::Object(d));
    if let Some(g) = req.get("group_by") {
        let by = strings(g.get("by").unwrap_or(&Value::Null));
        if by.is_empty() {
            return Err("group_by needs \"by\": a column or a list of columns".into());
        }
        for c in &by {
            check(c)?;
        }
        let mut groups: BTreeMap<String, Group<'_>> = BTreeMap::new();
        for r in &all {
            let k = key_of(r, &by);
            groups
                .entry(serde_json::to_string(&k).unwrap_or_default())
                .or_insert_with(|| (k, Vec::new()))
                .1
                .push(r);
        }
        let aggs = g
            .get("aggregates")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![json!({"op": "count"})]);
        let mut rows = Vec::new();
        for (k, members) in groups.values() {
            let mut row = Map::new();
            for (c, v) in by.iter().zip(k) {
                row.insert(c.clone(), v.clone());
            }
            for a in &aggs {
                let op = a.get("op").and_then(Value::as_str).unwrap_or("count");
                let col = a.get("column").and_then(Value::as_str);
                if let Some(c) = col {
                    check(c)?;
                } else if op != "count" {
                    return Err(format!("aggregate \"{op}\" needs a \"column\""));
                }
                let values = col.map(|c| table.numbers(c, members)).unwrap_or_default();
                let name = match col {
                    Some(c) => format!("{op}({c})"),
                    None => "count".into(),
                };
                row.insert(name, aggregate(op, &values, members.len())?);
            }
            rows.push(Value::Object(row));
        }
        out.insert("groups".into(), Value::Array(rows));
    }
    if let Some(cmps) = req.get("compare").and_then(Value::as_array) {
        let mut results = Vec::new();
        for c in cmps {
            let stat = c.get("stat").and_then(Value::as_str).unwrap_or("mean");
            let stat_of = |col: &str,
                           rows: &[&Map<String, Value>]|
             -> std::result::Result<Option<f64>, String> {
                check(col)?;
                Ok(aggregate(stat, &table.numbers(col, rows), rows.len())?.as_f64())
            };
            let (label_a, label_b, a, b) = if let Some(cols) = c.get("columns") {
                let cols = strings(cols);
                let [x, y] = cols.as_slice() else {
                    return Err("a column comparison needs \"columns\": [a, b]".into());
                };
                (x.clone(), y.clone(), stat_of(x, &all)?, stat_of(y, &all)?)
            } else if let Some(by) = c.get("by").and_then(Value::as_str) {
                check(by)?;
                let col = c
                    .get("column")
                    .and_then(Value::as_str)
                    .ok_or("a group comparison needs \"column\" (what to compare)".to_owned())?;
                let groups = c.get("groups").and_then(Value::as_array).ok_or(
                    "a group comparison needs \"groups\": [a, b] (values of the \"by\" column)"
                        .to_owned(),
                )?;
                let [ga, gb] = groups.as_slice() else {
                    return Err("\"groups\" must name exactly two groups".into());
                };
                let pick = |g: &Value| -> Vec<&Map<String, Value>> {
                    all.iter()
                        .filter(|r| {
                            r.get(by).is_some_and(|v| {
                                v == g || number(v).zip(number(g)).is_some_and(|(x, y)| x == y)
                            })
                        })
                        .copied()
                        .collect()
                };
                let label = |g: &Value| {
                    g.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| g.to_string())
                };
                (
                    label(ga),
                    label(gb),
                    stat_of(col, &pick(ga))?,
                    stat_of(col, &pick(gb))?,
                )
            } else {
                return Err("a comparison needs \"columns\" or \"by\" with \"groups\"".into());
            };
            let difference = a.zip(b).map(|(a, b)| a - b);
            let ratio = a.zip(b).and_then(|(a, b)| (b != 0.0).then(|| a / b));
            results.push(json!({
                "stat": stat, "a": label_a, "b": label_b,
                "value_a": a, "value_b": b,
                "difference": difference, "ratio": ratio,
                "percent_change": ratio.map(|r| (r - 1.0) * 100.0),
            }));
        }
        out.insert("comparisons".into(), Value::Array(results));
    }
    Ok(Value::Object(out))
}

#[async_trait]
impl Builtin for DataAnalysis {
    fn spec(&self) -> ToolSpec {
        ToolSpec::new("data_analysis", InvokerSpec::Builtin { name: "data_analysis".into() })
            .description("Descriptive statistics, group-by aggregates and comparisons over CSV text or JSON records")
            .input_schema(json!({
                "type": "object",
                "properties": {
                    "csv": {"type": "string"},
                    "records": {"type": "array", "items": {"type": "object"}},
                    "describe": {"type": "array", "items": {"type": "string"}},
                    "percentiles": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 100}},
                    "group_by": {
                        "type": "object",
                        "required": ["by"],
                        "properties": {
                            "by": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                            "aggregates": {"type": "array", "items": {
                                "type": "object",
                                "required": ["op"],
                                "properties": {
                                    "op": {"enum": ["sum", "mean", "avg", "count", "min", "max", "median"]},
                                    "column": {"type": "string"}
                                }
                            }}
                        }
                    },
                    "compare": {"type": "array", "items": {"type": "object"}}
                },
                "oneOf": [{"required": ["csv"]}, {"required": ["records"]}]
            }))
            .policy(Policy::default())
    }

    async fn call(&self, input: Value, cx: &ToolContext<'_>) -> Result<Value> {
        let table = match (input.get("csv"), input.get("records")) {
            (Some(Value::String(s)), _) => Table::from_csv(s),
            (_, Some(Value::Array(a))) => Table::from_records(a),
            _ => Err("give \"csv\" (text) or \"records\" (an array of objects)".into()),
        }
        .map_err(|e| cx.failed(e))?;
        analyse(&table, &input).map_err(|e| cx.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert_eq!(percentile(&v, 25.0), Some(1.75));
        assert_eq!(percentile(&v, 100.0), Some(4.0));
        let d = describe(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], &[]);
        assert_eq!(d["mean"], json!(5.0));
        assert!((d["stddev"].as_f64().unwrap() - 2.138089935).abs() < 1e-6);
    }
}
