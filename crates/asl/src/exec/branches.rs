//! Map and Parallel: starting their iterations and branches as child threads, collecting
//! what they return, tolerated failures, and the history events AWS records around them.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::io::Io;
use super::states::Flow;
use super::{Cx, Execution, Join, Seg, TStatus, Thread, error_output};
use crate::definition::{Kind, QueryLanguage, State};
use crate::error::{Failure, names};
use crate::{jsonata, jsonpath};

impl Execution {
    pub(super) fn start_map(
        &mut self,
        cx: &mut Cx,
        tid: u64,
        state: &State,
        map: &crate::definition::Map,
        context: &Value,
    ) -> Result<Flow, Failure> {
        let io = self.io(tid, state, context);
        let eff = io.effective_input()?;
        let jsonata = io.lang == QueryLanguage::Jsonata;
        let items = if jsonata {
            match &map.items {
                Some(t) => jsonata::eval_typed(
                    t,
                    "Items",
                    jsonata::JsonType::Array,
                    &io.states(&[]),
                    io.vars,
                    cx.host,
                )?,
                None => {
                    if !eff.is_array() {
                        return Err(Failure::query_evaluation(format!(
                            "Map state input must be an array but was: {eff}"
                        )));
                    }
                    eff.clone()
                }
            }
        } else {
            match &map.items_path {
                Some(p) => {
                    let v = jsonpath::read(p, &io.scope(&eff))?;
                    match v {
                        Some(v @ Value::Array(_)) => v,
                        _ => {
                            let shown = p
                                .strip_prefix('$')
                                .filter(|r| r.starts_with('$'))
                                .unwrap_or(p);
                            return Err(Failure::new(
                                names::RUNTIME,
                                format!("Reference path \"{shown}\" must point to array."),
                            ));
                        }
                    }
                }
                None => match &eff {
                    Value::Array(_) => eff.clone(),
                    _ => {
                        return Err(Failure::new(
                            names::RUNTIME,
                            "Reference path \"$\" must point to array.",
                        ));
                    }
                },
            }
        };
        let items = items.as_array().cloned().unwrap_or_default();
        let int_field = |v: &Option<Value>,
                         path: &Option<String>,
                         field: &str,
                         host: &mut dyn crate::Host|
         -> Result<Option<f64>, Failure> {
            if let Some(p) = path {
                let v = jsonpath::read(p, &io.scope(&eff))?.unwrap_or(Value::Null);
                // AWS also takes numbers written as strings here.
                let n = match &v {
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    other => other.as_f64(),
                };
                let ok = if field == "ToleratedFailurePercentage" {
                    n
                } else {
                    n.filter(|f| f.fract() == 0.0)
                };
                let shown = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                let kind = if field == "ToleratedFailurePercentage" {
                    "float"
                } else {
                    "integer"
                };
                return ok.map(Some).ok_or_else(|| {
                    Failure::runtime(format!("The {field}Path field refers to value \"{shown}\" which is not a valid {kind}: {p}"))
                });
            }
            match v {
                None => Ok(None),
                Some(v) => {
                    let v = if jsonata {
                        jsonata::eval_template(v, field, &io.states(&[]), io.vars, host)?
                    } else {
                        v.clone()
                    };
                    v.as_f64().map(Some).ok_or_else(|| {
                        Failure::query_evaluation(format!(
                            "The {field} field must be a number, but was: {v}"
                        ))
                    })
                }
            }
        };
        let max = int_field(
            &map.max_concurrency,
            &map.max_concurrency_path,
            "MaxConcurrency",
            cx.host,
        )?;
        // The tolerated failure fields fail the state only after MapStateStarted, as on AWS.
        let count = int_field(
            &map.tolerated_failure_count,
            &map.tolerated_failure_count_path,
            "ToleratedFailureCount",
            cx.host,
        );
        let pct = int_field(
            &map.tolerated_failure_percentage,
            &map.tolerated_failure_percentage_path,
            "ToleratedFailurePercentage",
            cx.host,
        );
        let tolerated = count
            .and_then(|count| Ok((count, pct?)))
            .and_then(|(count, pct)| {
                if count.is_some_and(|c| c < 0.0) {
                    return Err(Failure::runtime(
                        "ToleratedFailureCount cannot be negative.",
                    ));
                }
                if pct.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                    return Err(Failure::runtime(
                        "ToleratedFailurePercentage must be between 0 and 100.",
                    ));
                }
                Ok((count, pct))
            });
        // Each item's input: ItemSelector (or Parameters) evaluated with the item in `$$.Map.Item`.
        let mut pending = VecDeque::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let input = match &map.item_selector {
                None => item.clone(),
                Some(sel) => {
                    let mut ctx = context.clone();
                    ctx["Map"] = json!({"Item": {"Index": index, "Value": item}});
                    let iio = Io {
                        context: &ctx,
                        ..self.io(tid, state, &ctx)
                    };
                    if jsonata {
                        jsonata::eval_template(
                            sel,
                            "ItemSelector",
                            &iio.states(&[]),
                            iio.vars,
                            cx.host,
                        )?
                    } else {
                        jsonpath::eval_payload(sel, &iio.scope(&eff), cx.host)?
                    }
                }
            };
            pending.push_back((index, input));
        }
        let distributed = map
            .item_processor
            .as_ref()
            .and_then(|p| p.processor_config.as_ref())
            .and_then(|c| c.mode.as_deref())
            == Some("DISTRIBUTED");
        self.emit(
            cx,
            tid,
            "MapStateStarted",
            Some(json!({"length": items.len()})),
        );
        let (count, pct) = tolerated?;
        if distributed {
            // arn:aws:states:REGION:ACCOUNT:mapRun:MACHINE/LABEL:ID (the label defaults to
            // the state's name).
            let prefix = self
                .info
                .state_machine_arn
                .replace(":stateMachine:", ":mapRun:");
            let label = map
                .label
                .clone()
                .unwrap_or_else(|| self.threads[&tid].state.clone());
            let run = format!("{prefix}/{label}:{}", cx.host.uuid());
            self.emit(cx, tid, "MapRunStarted", Some(json!({"mapRunArn": run})));
        }
        let max = max.map(|m| m as usize).unwrap_or(0);
        self.join(
            cx,
            tid,
            state,
            true,
            pending,
            max,
            count.map(|c| c as u64),
            pct,
            eff,
        );
        Ok(Flow::Wait)
    }

    /// Starts branches (Parallel) or iterations (Map) and waits for them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join(
        &mut self,
        cx: &mut Cx,
        tid: u64,
        state: &State,
        map: bool,
        pending: VecDeque<(usize, Value)>,
        max_concurrency: usize,
        tolerated_count: Option<u64>,
        tolerated_percentage: Option<f64>,
        raw_input: Value,
    ) {
        let n = pending.len();
        // A redrive runs only what had not succeeded when the state failed.
        let t = self.threads.get_mut(&tid).unwrap();
        let kept = t
            .kept_results
            .take()
            .filter(|k| t.redriving && k.len() == n);
        let mut pending = pending;
        let mut results = vec![None; n];
        if let Some(kept) = kept {
            pending.retain(|(slot, _)| kept[*slot].is_none());
            results = kept;
        }
        let join = Join {
            map,
            results,
            pending,
            running: Vec::new(),
            max_concurrency,
            failures: 0,
            tolerated_count,
            tolerated_percentage,
            raw_input,
            last_iteration_event: None,
            failed: Default::default(),
        };
        let all_done = join.pending.is_empty();
        self.threads.get_mut(&tid).unwrap().status = TStatus::Join(Box::new(join));
        if n == 0 || all_done {
            self.join_finished(cx, tid, state);
            return;
        }
        self.spawn_children(cx, tid);
    }

    pub(super) fn spawn_children(&mut self, cx: &mut Cx, tid: u64) {
        loop {
            let (slot, input, map) = {
                let t = self.threads.get_mut(&tid).unwrap();
                let TStatus::Join(j) = &mut t.status else {
                    return;
                };
                if j.max_concurrency > 0 && j.running.len() >= j.max_concurrency {
                    return;
                }
                let Some((slot, input)) = j.pending.pop_front() else {
                    return;
                };
                (slot, input, j.map)
            };
            let child = self.new_id();
            let distributed = self.is_distributed(cx, tid);
            let parent = &self.threads[&tid];
            let def_state = Self::machine_of(cx.def, &parent.machine)
                .state(&parent.state)
                .expect("parent state exists");
            let mut machine = parent.machine.clone();
            machine.push(Seg {
                state: parent.state.clone(),
                branch: if map { None } else { Some(slot) },
            });
            let sub = Self::machine_of(cx.def, &machine);
            let language = sub
                .query_language
                .unwrap_or(def_state.language(parent.language));
            let name = parent.state.clone();
            let _ = name;
            let parent = &self.threads[&tid];
            let thread = Thread {
                parent: Some((tid, slot)),
                machine,
                language,
                state: sub.start_at.clone(),
                input: input.clone(),
                vars: parent.vars.clone(),
                status: TStatus::Ready,
                retries: Vec::new(),
                retry_count: 0,
                retrying: false,
                entered_event: 0,
                entered_ms: 0,
                last_event: parent.last_event,
                map_item: if map { Some((slot, input)) } else { None },
                task_heartbeat: None,
                in_task: false,
                iteration_pending: map,
                entered_prev: 0,
                silent: parent.silent || (map && distributed),
                kept_results: None,
                redriving: false,
            };
            self.threads.insert(child, thread);
            if let TStatus::Join(j) = &mut self.threads.get_mut(&tid).unwrap().status {
                j.running.push(child);
            }
        }
    }

    pub(super) fn child_done(
        &mut self,
        cx: &mut Cx,
        ptid: u64,
        slot: usize,
        child: u64,
        child_last: u64,
        result: Result<Value, Failure>,
    ) {
        let Some(state) = self.state_of(cx, ptid) else {
            return;
        };
        let name = self.threads[&ptid].state.clone();
        let map = {
            let TStatus::Join(j) = &mut self.threads.get_mut(&ptid).unwrap().status else {
                return;
            };
            j.running.retain(|c| *c != child);
            j.map
        };
        // Iteration events link to the iteration's last event; the Map's chain continues from
        // there, as AWS records it. A Distributed Map's iterations live in their map run.
        if !self.is_distributed(cx, ptid) {
            self.threads.get_mut(&ptid).unwrap().last_event = child_last;
        }
        let mut failure = None;
        match result {
            Ok(v) => {
                if map && !self.is_distributed(cx, ptid) {
                    let id = self.emit_after(
                        cx,
                        child_last,
                        "MapIterationSucceeded",
                        Some(json!({"index": slot, "name": name})),
                    );
                    if let TStatus::Join(j) = &mut self.threads.get_mut(&ptid).unwrap().status {
                        j.last_iteration_event = Some(id);
                    }
                }
                if let TStatus::Join(j) = &mut self.threads.get_mut(&ptid).unwrap().status {
                    j.results[slot] = Some(v);
                }
            }
            Err(f) => {
                if map && !self.is_distributed(cx, ptid) {
                    self.emit_after(
                        cx,
                        child_last,
                        "MapIterationFailed",
                        Some(json!({"index": slot, "name": name})),
                    );
                }
                let TStatus::Join(j) = &mut self.threads.get_mut(&ptid).unwrap().status else {
                    return;
                };
                let tolerant =
                    j.map && (j.tolerated_count.is_some() || j.tolerated_percentage.is_some());
                if tolerant {
                    j.failed.insert(slot);
                    j.failures += 1;
                    j.results[slot] = Some(error_output(&f));
                    let total = j.results.len().max(1) as f64;
                    let over_count = j.tolerated_count.is_some_and(|c| j.failures as u64 > c);
                    let over_pct = j
                        .tolerated_percentage
                        .is_some_and(|p| j.failures as f64 * 100.0 / total > p);
                    let within = match (j.tolerated_count, j.tolerated_percentage) {
                        (Some(_), Some(_)) => !(over_count && over_pct),
                        _ => !(over_count || over_pct),
                    };
                    if !within {
                        failure = Some(Failure::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        ));
                    }
                } else {
                    failure = Some(f);
                }
            }
        }
        if let Some(f) = failure {
            let running = match &self.threads[&ptid].status {
                TStatus::Join(j) => j.running.clone(),
                _ => Vec::new(),
            };
            for c in running {
                self.cancel_thread(cx, c);
            }
            self.keep_results(ptid);
            self.threads.get_mut(&ptid).unwrap().status = TStatus::Ready;
            self.branch_failed(cx, ptid, state, f);
            return;
        }
        self.spawn_children(cx, ptid);
        let done = matches!(&self.threads[&ptid].status, TStatus::Join(j) if j.running.is_empty() && j.pending.is_empty());
        if done {
            self.join_finished(cx, ptid, state);
        }
    }

    /// Keeps the results of a joining thread's iterations (branches) that succeeded, for a
    /// redrive to run only the others.
    pub(super) fn keep_results(&mut self, tid: u64) {
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        if let TStatus::Join(j) = &t.status {
            let kept = j
                .results
                .iter()
                .enumerate()
                .map(|(i, r)| r.clone().filter(|_| !j.failed.contains(&i)))
                .collect();
            t.kept_results = Some(kept);
        }
    }

    pub(super) fn is_distributed(&self, cx: &Cx, tid: u64) -> bool {
        matches!(self.state_of(cx, tid).map(|s| &s.kind), Some(Kind::Map(m))
            if m.item_processor.as_ref().and_then(|p| p.processor_config.as_ref()).and_then(|c| c.mode.as_deref()) == Some("DISTRIBUTED"))
    }

    pub(super) fn join_finished(&mut self, cx: &mut Cx, tid: u64, state: &State) {
        let t = self.threads.get_mut(&tid).unwrap();
        let TStatus::Join(j) = std::mem::replace(&mut t.status, TStatus::Ready) else {
            return;
        };
        let results = Value::Array(
            j.results
                .into_iter()
                .map(|r| r.unwrap_or(Value::Null))
                .collect(),
        );
        // The closing events all link to the last iteration's end (a Distributed Map's, to its
        // map run's end); so does the state's exit.
        let mut anchor = j
            .last_iteration_event
            .unwrap_or(self.threads[&tid].last_event);
        if j.map {
            if self.is_distributed(cx, tid) {
                anchor = self.emit_after(cx, anchor, "MapRunSucceeded", None);
            }
            self.emit_after(cx, anchor, "MapStateSucceeded", None);
        } else {
            // AWS records it (the corpus's Parallel recordings mask event ids and leave a gap
            // where it stands).
            self.emit_after(cx, anchor, "ParallelStateSucceeded", None);
        }
        self.threads.get_mut(&tid).unwrap().last_event = anchor;
        let context = self.context_for(tid, state);
        let io = self.io(tid, state, &context);
        let next = state.common.next.clone();
        let flow = io
            .finish(Some(results), cx.host)
            .map(|finished| Flow::Leave { finished, next });
        self.after(cx, tid, state, flow);
    }
}
