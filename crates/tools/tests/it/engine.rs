//! Tools in state machines: `lambda:invoke` and function ARNs resolve to registry tools, tool
//! errors drive Retry and Catch, and an approval-gated call waits on its task token until a
//! person answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentry_engine::{Engine, EngineConfig, ExecutionDescription, ResourceTable};
use agentry_tools::builtin::DataAnalysis;
use agentry_tools::engine::ToolTasks;
use agentry_tools::{Approval, Policy, Registry};
use serde_json::{Value, json};

use crate::support::{process_tool, script};

struct Node {
    engine: Engine,
    tasks: Arc<ToolTasks>,
    _node: agentry_engine::Node,
    _dir: tempfile::TempDir,
}

async fn start(registry: Arc<Registry>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = agentry_storage::open(&format!(
        "sqlite://{}",
        dir.path().join("store.db").display()
    ))
    .await
    .unwrap();
    let queue = agentry_queue::open(&format!(
        "sqlite://{}",
        dir.path().join("queue.db").display()
    ))
    .await
    .unwrap();
    let mut table = ResourceTable::new();
    let tasks = agentry_tools::engine::register(&mut table, registry);
    let config = EngineConfig {
        visibility_timeout: Duration::from_secs(5),
        poll_wait: Duration::from_millis(100),
        timer_poll: Duration::from_millis(100),
        outbox_grace: Duration::from_millis(1000),
        outbox_sweep: Duration::from_millis(300),
        ..EngineConfig::default()
    };
    let engine = Engine::open(store, queue, table, config).await.unwrap();
    tasks.connect(Arc::new(engine.clone()));
    let node = engine.run();
    Node {
        engine,
        tasks,
        _node: node,
        _dir: dir,
    }
}

impl Node {
    async fn start(&self, name: &str, definition: Value, input: Value) -> String {
        let m = self
            .engine
            .create_state_machine(name, &definition.to_string())
            .await
            .unwrap();
        self.engine
            .start_execution(&m, None, &input.to_string())
            .await
            .unwrap()
            .execution_arn
    }

    async fn finish(&self, arn: &str) -> ExecutionDescription {
        let d = self
            .engine
            .wait_for_execution(arn, Duration::from_secs(30))
            .await
            .unwrap();
        assert_ne!(d.status, "RUNNING", "{arn} did not finish");
        d
    }
}

fn side_effect_tool(dir: &Path, work: &Path, name: &str) -> agentry_tools::ToolSpec {
    let s = script(
        dir,
        &format!("{name}.sh"),
        "read -r event; echo \"$event\" >> sent; printf '{\"sent\":true,\"count\":%s}' \"$(/usr/bin/wc -l < sent)\"",
    );
    let p = Policy::default().with_working_dir(work);
    process_tool(name, &s).policy(p)
}

fn sent(work: &Path) -> Vec<String> {
    std::fs::read_to_string(work.join("sent"))
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invoke_and_function_arns_run_registry_tools() {
    let dir = tempfile::tempdir().unwrap();
    let r = Arc::new(Registry::new());
    r.add_builtin(Arc::new(DataAnalysis)).unwrap();
    r.register(process_tool(
        "echo",
        &script(dir.path(), "echo.sh", "exec /bin/cat"),
    ))
    .unwrap();
    let n = start(r.clone()).await;
    let arn = n
        .start(
            "analyse",
            json!({"StartAt": "Analyse", "States": {
                "Analyse": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {
                        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:data_analysis:live",
                        "Payload": {"csv.$": "$.csv", "describe": ["price"]}},
                    "ResultPath": "$.lambda", "Next": "Direct"},
                "Direct": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:echo",
                    "Parameters": {"mean.$": "$.lambda.Payload.describe.price.mean",
                                   "status.$": "$.lambda.StatusCode",
                                   "version.$": "$.lambda.ExecutedVersion",
                                   "request.$": "$.lambda.SdkResponseMetadata.RequestId"},
                    "End": true}
            }}),
            json!({"csv": "product,price\na,10\nb,20\nc,60\n"}),
        )
        .await;
    let d = n.finish(&arn).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["mean"], json!(30.0));
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["version"], json!("$LATEST"));
    assert!(!out["request"].as_str().unwrap().is_empty());
    let m = r.metrics();
    assert_eq!(m.get("data_analysis", "default").unwrap().calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_and_catch_apply_to_tool_errors() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Arc::new(Registry::new());
    // Fails (exit 1) on its first two runs, then succeeds.
    let p = Policy::default().with_working_dir(work.path());
    r.register(
        process_tool(
            "flaky",
            &script(d, "flaky.sh", "echo x >> runs; n=$(/usr/bin/wc -l < runs); if [ $n -lt 3 ]; then echo \"attempt $n failed\" >&2; exit 1; fi; printf '{\"runs\":%s}' $n"),
        )
        .policy(p),
    )
    .unwrap();
    r.register(process_tool(
        "pricing",
        &script(d, "pricing.sh", r#"printf '{"errorType":"Pricing.NoData","errorMessage":"no prices for competitor X"}'"#),
    ))
    .unwrap();
    r.register(
        process_tool("slow", &script(d, "slow.sh", "exec /bin/sleep 10"))
            .policy(Policy::default().with_timeout(Duration::from_millis(300))),
    )
    .unwrap();
    let n = start(r).await;
    let fun = |name: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
    let arn = n
        .start(
            "retry-catch",
            json!({"StartAt": "Flaky", "States": {
                "Flaky": {"Type": "Task", "Resource": fun("flaky"), "ResultPath": "$.flaky",
                    "Retry": [{"ErrorEquals": ["Tools.Failed"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1}],
                    "Next": "Pricing"},
                "Pricing": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "pricing", "Payload": {}},
                    "Catch": [{"ErrorEquals": ["Pricing.NoData"], "ResultPath": "$.pricing_error", "Next": "Slow"}],
                    "End": true},
                "Slow": {"Type": "Task", "Resource": fun("slow"), "ResultPath": "$.slow",
                    "Catch": [{"ErrorEquals": ["Tools.Timeout"], "ResultPath": "$.slow_error", "Next": "Done"}],
                    "End": true},
                "Done": {"Type": "Pass", "End": true}
            }}),
            json!({}),
        )
        .await;
    let d = n.finish(&arn).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["flaky"], json!({"runs": 3}), "{out}");
    assert_eq!(out["pricing_error"]["Error"], json!("Pricing.NoData"));
    let cause: Value =
        serde_json::from_str(out["pricing_error"]["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(
        cause,
        json!({"errorType": "Pricing.NoData", "errorMessage": "no prices for competitor X"})
    );
    assert_eq!(out["slow_error"]["Error"], json!("Tools.Timeout"));
    assert!(
        out["slow_error"]["Cause"]
            .as_str()
            .unwrap()
            .contains("timed out after 300 ms")
    );
    let history = n.engine.history(&arn).await.unwrap();
    let failed = history.iter().filter(|e| e["type"] == "TaskFailed").count();
    assert_eq!(
        failed, 4,
        "two retried failures, the caught error and the timeout"
    );

    // Without a Catch the execution fails with the tool's error.
    let arn = n
        .start(
            "uncaught",
            json!({"StartAt": "P", "States": {"P": {"Type": "Task", "Resource": fun("pricing"), "End": true}}}),
            json!({}),
        )
        .await;
    let d = n.finish(&arn).await;
    assert_eq!(
        (d.status.as_str(), d.error.as_deref()),
        ("FAILED", Some("Pricing.NoData"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_gated_call_waits_for_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let r = Arc::new(Registry::new());
    r.register(
        side_effect_tool(dir.path(), work.path(), "send_report").approval(
            Approval::RecipientsOutside {
                pointer: "/to".into(),
                domains: vec!["example.com".into()],
            },
        ),
    )
    .unwrap();
    let n = start(r.clone()).await;
    let definition = json!({"StartAt": "Send", "States": {
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "send_report", "Payload": {"to.$": "$.to"}},
            "ResultSelector": {"sent.$": "$.Payload.sent"},
            "Catch": [{"ErrorEquals": ["Tools.ApprovalDenied"], "ResultPath": "$.denied", "Next": "Denied"}],
            "End": true},
        "Denied": {"Type": "Pass", "End": true}
    }});
    // Inside the allowed domain: no approval needed, the result answers the token at once.
    let inside = n
        .start("send", definition.clone(), json!({"to": "ceo@example.com"}))
        .await;
    let d = n.finish(&inside).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    assert_eq!(d.output_json(), Some(json!({"sent": true})));
    assert_eq!(sent(work.path()).len(), 1);

    let m = n
        .engine
        .create_state_machine("send2", &definition.to_string())
        .await
        .unwrap();
    let yes = n
        .engine
        .start_execution(&m, Some("yes"), r#"{"to": "buyer@competitor.test"}"#)
        .await
        .unwrap();
    let no = n
        .engine
        .start_execution(&m, Some("no"), r#"{"to": "leak@elsewhere.test"}"#)
        .await
        .unwrap();
    let pending = wait_pending(&r, 2).await;
    assert!(
        pending[0]
            .request
            .reason
            .contains("outside the allowed domains"),
        "{pending:?}"
    );
    let by_to = |to: &str| {
        pending
            .iter()
            .find(|p| p.request.input["to"] == json!(to))
            .unwrap()
            .clone()
    };
    let (approve, refuse) = (by_to("buyer@competitor.test"), by_to("leak@elsewhere.test"));
    assert_eq!(approve.request.tool, "send_report");
    // Both wait; neither has run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        n.engine
            .describe_execution(&yes.execution_arn)
            .await
            .unwrap()
            .status,
        "RUNNING"
    );
    assert_eq!(
        sent(work.path()).len(),
        1,
        "a gated call ran before its approval"
    );

    let ran = n.tasks.approve(&approve.token).await.unwrap().unwrap();
    assert_eq!(ran["sent"], json!(true));
    let d = n.finish(&yes.execution_arn).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    assert_eq!(d.output_json(), Some(json!({"sent": true})));
    assert_eq!(sent(work.path()).len(), 2);
    assert!(sent(work.path())[1].contains("buyer@competitor.test"));

    n.tasks
        .reject(&refuse.token, "not to that address")
        .await
        .unwrap();
    let d = n.finish(&no.execution_arn).await;
    assert_eq!(d.status, "SUCCEEDED", "{d:?}");
    let out = d.output_json().unwrap();
    assert_eq!(out["denied"]["Error"], json!("Tools.ApprovalDenied"));
    assert!(
        out["denied"]["Cause"]
            .as_str()
            .unwrap()
            .contains("not to that address")
    );
    assert_eq!(sent(work.path()).len(), 2, "a refused call ran");
    assert!(r.pending_approvals(None).await.unwrap().is_empty());
    // An answered token is no longer pending.
    assert!(n.tasks.approve(&approve.token).await.is_err());

    // Without a task token the gated call cannot wait: it fails, naming the way to wait.
    let arn = n
        .start(
            "no-token",
            json!({"StartAt": "Send", "States": {"Send": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "send_report", "Payload": {"to": "x@outside.test"}}, "End": true}}}),
            json!({}),
        )
        .await;
    let d = n.finish(&arn).await;
    assert_eq!(d.error.as_deref(), Some("Tools.ApprovalRequired"));
    assert!(
        d.cause
            .as_deref()
            .unwrap_or("")
            .contains(".waitForTaskToken"),
        "{d:?}"
    );
}

async fn wait_pending(r: &Registry, n: usize) -> Vec<agentry_tools::PendingApproval> {
    for _ in 0..300 {
        let p = r.pending_approvals(Some("default")).await.unwrap();
        if p.len() >= n {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("approval requests were not recorded");
}

#[tokio::test]
async fn an_accounts_tenant_is_remembered_across_restarts() {
    let memory = Arc::new(agentry_tools::memory::MemoryStore::default());
    let arn = "arn:aws:states:us-east-1:123456789012:execution:m:e";
    {
        let r = Arc::new(Registry::with_memory(memory.clone()));
        let tasks = agentry_tools::engine::register(&mut agentry_engine::ResourceTable::new(), r);
        assert_eq!(tasks.tenant_of(arn).await, "default");
        tasks.bind_account("123456789012", "acme").await.unwrap();
        assert_eq!(tasks.tenant_of(arn).await, "acme");
    }
    let r = Arc::new(Registry::with_memory(memory));
    let tasks = agentry_tools::engine::register(&mut agentry_engine::ResourceTable::new(), r);
    assert_eq!(tasks.tenant_of(arn).await, "acme");
    assert_eq!(
        tasks
            .tenant_of("arn:aws:states:us-east-1:999999999999:execution:m:e")
            .await,
        "default"
    );
}
