//! A definition as a graph for drawing: every state a node (states inside a Map's item
//! processor or a Parallel's branches carry their container as `parent`; each branch is a
//! node of type `Branch`), every transition an edge: `next`, `choice` (labelled with the
//! rule's index), `default`, `catch` (labelled with the errors caught), and `start` from a
//! container to the first state it runs.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct Node {
    /// Unique in the graph: the state's name, prefixed by its containers' ids and `/`.
    pub id: String,
    pub name: String,
    /// The state's `Type`, or `Branch` for a Parallel's branch.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The first state of its scope.
    pub start: bool,
    /// Ends its scope (`End`, Succeed or Fail).
    pub end: bool,
}

#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// `next`, `choice`, `default`, `catch` or `start`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

#[derive(Serialize, ToSchema, Debug, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

pub fn graph(definition: &Value) -> Graph {
    let mut g = Graph::default();
    scope(definition, None, "", &mut g);
    g
}

fn edge(g: &mut Graph, from: &str, to: String, kind: &str, label: Option<String>) {
    g.edges.push(Edge {
        from: from.to_string(),
        to,
        kind: kind.into(),
        label,
    });
}

/// Adds the states of one `{StartAt, States}` scope; answers the id of its first state.
fn scope(def: &Value, parent: Option<&str>, prefix: &str, g: &mut Graph) -> Option<String> {
    let start = def.get("StartAt").and_then(Value::as_str)?;
    let states = def.get("States").and_then(Value::as_object)?;
    let id = |name: &str| format!("{prefix}{name}");
    for (name, state) in states {
        let kind = state
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string();
        let me = id(name);
        let end = state.get("End").and_then(Value::as_bool) == Some(true)
            || kind == "Succeed"
            || kind == "Fail";
        g.nodes.push(Node {
            id: me.clone(),
            name: name.clone(),
            kind: kind.clone(),
            parent: parent.map(str::to_string),
            start: name == start,
            end,
        });
        if let Some(next) = state.get("Next").and_then(Value::as_str) {
            edge(g, &me, id(next), "next", None);
        }
        if let Some(choices) = state.get("Choices").and_then(Value::as_array) {
            for (i, c) in choices.iter().enumerate() {
                if let Some(next) = c.get("Next").and_then(Value::as_str) {
                    edge(g, &me, id(next), "choice", Some(format!("rule {i}")));
                }
            }
        }
        if let Some(d) = state.get("Default").and_then(Value::as_str) {
            edge(g, &me, id(d), "default", None);
        }
        if let Some(catches) = state.get("Catch").and_then(Value::as_array) {
            for c in catches {
                if let Some(next) = c.get("Next").and_then(Value::as_str) {
                    let errors: Vec<&str> = c
                        .get("ErrorEquals")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    edge(g, &me, id(next), "catch", Some(errors.join(", ")));
                }
            }
        }
        let processor = state.get("ItemProcessor").or_else(|| state.get("Iterator"));
        if let Some(p) = processor
            && let Some(first) = scope(p, Some(&me), &format!("{me}/"), g)
        {
            edge(g, &me, first, "start", None);
        }
        if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
            for (i, b) in branches.iter().enumerate() {
                let branch = format!("{me}/{i}");
                g.nodes.push(Node {
                    id: branch.clone(),
                    name: format!("Branch {i}"),
                    kind: "Branch".into(),
                    parent: Some(me.clone()),
                    start: false,
                    end: false,
                });
                edge(g, &me, branch.clone(), "start", None);
                if let Some(first) = scope(b, Some(&branch), &format!("{branch}/"), g) {
                    edge(g, &branch, first, "start", None);
                }
            }
        }
    }
    Some(id(start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nests_map_and_parallel_and_labels_choice_and_catch() {
        let def = json!({"StartAt": "C", "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "M"}], "Default": "P"},
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}},
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}], "End": true},
            "P": {"Type": "Parallel", "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}], "Next": "F"},
            "F": {"Type": "Fail"}}});
        let g = graph(&def);
        let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["C", "M", "M/I", "P", "P/0", "P/0/A", "F"]);
        let inner = g.nodes.iter().find(|n| n.id == "M/I").unwrap();
        assert_eq!(inner.parent.as_deref(), Some("M"));
        assert!(inner.start && inner.end);
        let edges: Vec<(&str, &str, &str, Option<&str>)> = g
            .edges
            .iter()
            .map(|e| {
                (
                    e.from.as_str(),
                    e.to.as_str(),
                    e.kind.as_str(),
                    e.label.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            edges,
            [
                ("C", "M", "choice", Some("rule 0")),
                ("C", "P", "default", None),
                ("M", "F", "catch", Some("States.ALL")),
                ("M", "M/I", "start", None),
                ("P", "F", "next", None),
                ("P", "P/0", "start", None),
                ("P/0", "P/0/A", "start", None),
            ]
        );
    }
}
