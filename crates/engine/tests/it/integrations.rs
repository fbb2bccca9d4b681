//! The engine's own service integrations, run by state machines: `sqs:sendMessage` onto the
//! queue role, request-response and `.waitForTaskToken`.

use std::sync::Arc;
use std::time::Duration;

use agentry_engine::Engine;
use agentry_engine::integrations::register_sqs;
use agentry_queue::{AttributeValue, Queue, QueueAttributes, ReceiveOptions};
use serde_json::{Value, json};

use crate::support::*;

struct Sqs {
    engine: Engine,
    queue: Arc<dyn Queue>,
    _node: agentry_engine::Node,
    _dir: tempfile::TempDir,
}

async fn sqs() -> Sqs {
    let dir = tempfile::tempdir().unwrap();
    let (s, q) = urls(dir.path());
    let store = agentry_storage::open(&s).await.unwrap();
    let queue = agentry_queue::open(&q).await.unwrap();
    let config = config();
    // Only the integration: the test tables' stand-ins for SQS must not answer first.
    let mut table = agentry_engine::ResourceTable::new();
    register_sqs(
        &mut table,
        queue.clone(),
        [config.work_queue.clone(), config.task_queue.clone()],
    );
    let engine = Engine::open(store, queue.clone(), table, config)
        .await
        .unwrap();
    queue
        .create_queue("jobs", &QueueAttributes::default())
        .await
        .unwrap();
    let node = engine.run();
    Sqs {
        engine,
        queue,
        _node: node,
        _dir: dir,
    }
}

async fn run(
    s: &Sqs,
    name: &str,
    definition: Value,
    input: Value,
) -> agentry_engine::ExecutionDescription {
    let m = s
        .engine
        .create_state_machine(name, &definition.to_string())
        .await
        .unwrap();
    let started = s
        .engine
        .start_execution(&m, None, &input.to_string())
        .await
        .unwrap();
    finish(&s.engine, &started.execution_arn).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_puts_the_body_and_attributes_on_the_queue() {
    let s = sqs().await;
    let d = run(
        &s,
        "send",
        json!({"StartAt": "Send", "States": {"Send": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {
                "QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
                "MessageBody.$": "$.job",
                "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "fetch"}}
            },
            "End": true}}}),
        json!({"job": {"url": "http://example.test/a", "n": 1}}),
    )
    .await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    let got = s
        .queue
        .receive("jobs", ReceiveOptions::max(10))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let body = &got[0].body;
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        json!({"url": "http://example.test/a", "n": 1})
    );
    assert_eq!(out["MessageId"], json!(got[0].message_id));
    // MD5 of the body text, as SQS computes it.
    let md5 = out["MD5OfMessageBody"].as_str().unwrap();
    assert_eq!(md5.len(), 32);
    assert_eq!(
        got[0].attributes.get("kind"),
        Some(&AttributeValue::String("fetch".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_is_a_named_error_that_catch_matches_and_engine_queues_are_off_limits() {
    let s = sqs().await;
    let definition = |queue: &str| {
        json!({"StartAt": "Send", "States": {
            "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                "Parameters": {"QueueUrl": queue, "MessageBody": "x"},
                "Catch": [{"ErrorEquals": ["SQS.QueueDoesNotExistException"], "Next": "Missing"}],
                "End": true},
            "Missing": {"Type": "Pass", "End": true}}})
    };
    let d = run(&s, "missing", definition("nope"), json!({})).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["Error"], "SQS.QueueDoesNotExistException");
    assert!(out["Cause"].as_str().unwrap().contains("nope"), "{out}");
    let work = s.engine.config().work_queue.clone();
    let d = run(&s, "reserved", definition(&work), json!({})).await;
    assert_eq!(
        d.output_json().unwrap()["Error"],
        "SQS.QueueDoesNotExistException"
    );
    let bad = run(
        &s,
        "bad",
        json!({"StartAt": "Send", "States": {"Send": {"Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage",
            "Parameters": {"QueueUrl": "jobs", "MessageBody": "x", "DelaySeconds": 901},
            "End": true}}}),
        json!({}),
    )
    .await;
    assert_eq!(bad.status, "FAILED");
    assert_eq!(
        bad.error.as_deref(),
        Some("SQS.InvalidParameterValueException")
    );
    assert!(bad.cause.unwrap().contains("DelaySeconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_task_token_waits_for_the_worker_that_received_the_message() {
    let s = sqs().await;
    let m = s
        .engine
        .create_state_machine(
            "worker",
            &json!({"StartAt": "Ask", "States": {"Ask": {
                "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": "jobs",
                    "MessageBody": {"token.$": "$$.Task.Token", "source.$": "$.source"}},
                "End": true}}})
            .to_string(),
        )
        .await
        .unwrap();
    let started = s
        .engine
        .start_execution(&m, None, r#"{"source": "competitor-a"}"#)
        .await
        .unwrap();
    // A worker: receives the job, answers its token.
    let got = s
        .queue
        .receive("jobs", ReceiveOptions::max(1).wait(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        s.engine.history(&started.execution_arn).await.unwrap()
    );
    let job: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(job["source"], "competitor-a");
    assert_eq!(
        s.engine
            .describe_execution(&started.execution_arn)
            .await
            .unwrap()
            .status,
        "RUNNING"
    );
    s.engine
        .send_task_success(job["token"].as_str().unwrap(), r#"{"price": 42}"#)
        .await
        .unwrap();
    let d = finish(&s.engine, &started.execution_arn).await;
    assert_eq!(d.status, "SUCCEEDED");
    assert_eq!(d.output_json().unwrap(), json!({"price": 42}));
}
