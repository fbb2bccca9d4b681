//! Agents, users and sessions on the SQLite store, with turns run by the durable engine.

use std::sync::Arc;
use std::time::Duration;

use agentry_engine::{Engine, EngineConfig, Node, ResourceTable};
use agentry_sessions::{
    AgentConfig, Error, Knowledge, MemoryKnowledge, Sessions, Turn, TurnPolicy, TurnStatus,
};
use serde_json::{Value, json};

struct World {
    engine: Engine,
    sessions: Sessions,
    knowledge: Arc<MemoryKnowledge>,
    cache: Arc<dyn agentry_cache::Cache>,
    _node: Node,
    _dir: tempfile::TempDir,
}

const ACME: &str = "111111111111";

async fn world() -> World {
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
    // A stand-in for a tool, so that turns have tools to report.
    let table = ResourceTable::new().with("arn:aws:states:::lambda:invoke", |req| async move {
        Ok(json!({"Payload": {"echo": req.input["Payload"].clone()}, "StatusCode": 200}))
    });
    let config = EngineConfig {
        poll_wait: Duration::from_millis(100),
        timer_poll: Duration::from_millis(100),
        ..EngineConfig::default()
    };
    let engine = Engine::open(store.clone(), queue, table, config)
        .await
        .unwrap()
        .for_account(ACME)
        .unwrap();
    let node = engine.run();
    let knowledge = Arc::new(MemoryKnowledge::default());
    let cache = agentry_cache::open("memory://").await.unwrap();
    let sessions = Sessions::open(store)
        .await
        .unwrap()
        .with_knowledge(knowledge.clone())
        .with_cache(cache.clone());
    World {
        engine,
        sessions,
        knowledge,
        cache,
        _node: node,
        _dir: dir,
    }
}

/// A machine that answers with what it was given, after calling a tool.
fn echo_machine() -> Value {
    json!({"StartAt": "Tool", "States": {
        "Tool": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                 "Parameters": {"FunctionName": "arn:aws:lambda:local:000000000000:function:web_fetch",
                                "Payload": {"q.$": "$.message"}},
                 "ResultPath": "$.tool", "Next": "Answer"},
        "Answer": {"Type": "Pass",
                   "Parameters": {"summary.$": "States.Format('Competitor X prices at {}', $.message)",
                                  "input.$": "$", "artifacts": [{"key": "report.html"}]},
                   "End": true}}})
}

fn waiting_machine() -> Value {
    json!({"StartAt": "Think", "States": {"Think": {"Type": "Wait", "Seconds": 30, "End": true}}})
}

async fn agent(w: &World, name: &str, machine: Value, policy: TurnPolicy) {
    w.engine
        .create_state_machine(name, &machine.to_string())
        .await
        .unwrap();
    w.sessions
        .put_agent(
            "acme",
            name,
            AgentConfig {
                state_machine: name.into(),
                turn_policy: policy,
                tools: vec!["web_fetch".into()],
                ..AgentConfig::default()
            },
        )
        .await
        .unwrap();
}

/// Refreshes until the turn `n` is closed (up to 20 s).
async fn closed(w: &World, user: &str, id: &str, n: u64) -> Turn {
    for _ in 0..400 {
        let turns = w
            .sessions
            .refresh(&w.engine, "acme", user, id)
            .await
            .unwrap();
        if let Some(t) = turns.iter().find(|t| t.n == n)
            && !t.status.is_open()
        {
            return t.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("turn {n} of {id} did not close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_versioned_and_sessions_keep_their_version() {
    let w = world().await;
    let config = AgentConfig {
        state_machine: "flow".into(),
        ..AgentConfig::default()
    };
    let v1 = w
        .sessions
        .put_agent("acme", "pricing", config.clone())
        .await
        .unwrap();
    assert_eq!(v1.version, 1);
    let same = w
        .sessions
        .put_agent("acme", "pricing", config.clone())
        .await
        .unwrap();
    assert_eq!(same.version, 1);
    let s = w
        .sessions
        .create_session("acme", "alice", "pricing", Some("Q3 pricing"))
        .await
        .unwrap();
    let v2 = w
        .sessions
        .put_agent(
            "acme",
            "pricing",
            AgentConfig {
                turn_policy: TurnPolicy::Queue,
                ..config
            },
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(s.agent_version, 1);
    assert_eq!(
        w.sessions
            .agent("acme", "pricing", Some(1))
            .await
            .unwrap()
            .config
            .turn_policy,
        TurnPolicy::Reject
    );
    assert_eq!(w.sessions.list_agents("acme").await.unwrap().len(), 1);
    assert!(matches!(
        w.sessions.agent("globex", "pricing", None).await,
        Err(Error::NotFound(_))
    ));
    let bad = w
        .sessions
        .put_agent("acme", "bad name!", AgentConfig::default())
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("agent"), "{bad}");
    let no_machine = w
        .sessions
        .put_agent("acme", "empty", AgentConfig::default())
        .await
        .unwrap_err();
    assert!(
        no_machine.to_string().contains("state_machine"),
        "{no_machine}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_runs_enriched_and_is_kept_with_its_tools_outputs_and_findings() {
    let w = world().await;
    agent(&w, "pricing", echo_machine(), TurnPolicy::Reject).await;
    w.sessions
        .put_profile(
            "acme",
            "alice",
            json!({"industry": "retail", "currency": "EUR"}),
        )
        .await
        .unwrap();
    let s = w
        .sessions
        .create_session("acme", "alice", "pricing", None)
        .await
        .unwrap();
    let t1 = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &s.id, "research pricing")
        .await
        .unwrap();
    assert_eq!(t1.n, 1);
    assert_eq!(t1.status, TurnStatus::Running);
    let arn = t1.execution_arn.clone().unwrap();
    assert!(arn.contains(":111111111111:execution:pricing:"), "{arn}");
    let t1 = closed(&w, "alice", &s.id, 1).await;
    assert_eq!(t1.status, TurnStatus::Succeeded, "{t1:?}");
    let out = t1.output.clone().unwrap();
    assert_eq!(out["input"]["user"]["profile"]["industry"], "retail");
    assert_eq!(out["input"]["agent"]["tools"], json!(["web_fetch"]));
    assert_eq!(out["input"]["session"]["history"], json!([]));
    assert_eq!(t1.tools_used, vec!["web_fetch".to_string()]);
    assert_eq!(t1.artifacts, vec![json!({"key": "report.html"})]);
    assert!(t1.started_ms.is_some() && t1.ended_ms.is_some());

    // The second message carries the first turn, and finds its findings in the knowledge base.
    w.sessions
        .send_message(
            &w.engine,
            "acme",
            "alice",
            &s.id,
            "what pricing did we find?",
        )
        .await
        .unwrap();
    let t2 = closed(&w, "alice", &s.id, 2).await;
    let input = &t2.output.unwrap()["input"];
    assert_eq!(
        input["session"]["history"][0]["message"],
        "research pricing"
    );
    assert_eq!(
        input["session"]["history"][0]["output"]["summary"],
        "Competitor X prices at research pricing"
    );
    let hits = input["knowledge"].as_array().unwrap();
    assert!(
        hits.iter()
            .any(|h| h["text"].as_str().unwrap().contains("Competitor X prices")),
        "{hits:?}"
    );
    // Another user of the tenant does not find alice's findings.
    let other = w
        .knowledge
        .search("acme", "bob", "pricing competitor", 5)
        .await
        .unwrap();
    assert!(other.is_empty());
    let session = w.sessions.session("acme", "alice", &s.id).await.unwrap();
    assert_eq!(session.turns, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_list_newest_first_and_others_are_invisible() {
    let w = world().await;
    agent(&w, "pricing", echo_machine(), TurnPolicy::Reject).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = w
            .sessions
            .create_session("acme", "alice", "pricing", Some(&format!("s{i}")))
            .await
            .unwrap();
        ids.push(s.id);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    w.sessions
        .create_session("acme", "bob", "pricing", None)
        .await
        .unwrap();
    let (page, cursor) = w
        .sessions
        .list_sessions("acme", "alice", 3, None)
        .await
        .unwrap();
    let (rest, _) = w
        .sessions
        .list_sessions("acme", "alice", 3, cursor)
        .await
        .unwrap();
    let listed: Vec<String> = page.iter().chain(&rest).map(|s| s.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    let id = &ids[0];
    fn not_found<T>(r: Result<T, Error>) -> bool {
        matches!(r, Err(Error::NotFound(_)))
    }
    assert!(not_found(w.sessions.session("acme", "bob", id).await));
    assert!(not_found(w.sessions.session("globex", "alice", id).await));
    assert!(not_found(w.sessions.turns("acme", "bob", id).await));
    assert!(not_found(
        w.sessions
            .send_message(&w.engine, "acme", "bob", id, "hello")
            .await
    ));
    assert!(not_found(
        w.sessions.refresh(&w.engine, "globex", "alice", id).await
    ));
    // An unknown id answers the same.
    assert!(not_found(
        w.sessions
            .session("acme", "alice", "00000000-0000-0000-0000-000000000000")
            .await
    ));
    assert!(not_found(w.sessions.session("acme", "alice", "junk").await));
    let empty = w
        .sessions
        .send_message(&w.engine, "acme", "alice", id, "  ")
        .await
        .unwrap_err();
    assert!(empty.to_string().contains("message"), "{empty}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_during_a_turn_follows_the_agents_policy() {
    let w = world().await;
    for (name, policy) in [
        ("rejecting", TurnPolicy::Reject),
        ("queueing", TurnPolicy::Queue),
        ("interrupting", TurnPolicy::Interrupt),
    ] {
        agent(&w, name, waiting_machine(), policy).await;
    }
    let session = |agent: &'static str| {
        let s = w.sessions.clone();
        async move {
            s.create_session("acme", "alice", agent, None)
                .await
                .unwrap()
                .id
        }
    };

    let r = session("rejecting").await;
    w.sessions
        .send_message(&w.engine, "acme", "alice", &r, "first")
        .await
        .unwrap();
    let busy = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &r, "second")
        .await
        .unwrap_err();
    assert!(matches!(busy, Error::Busy(_)), "{busy}");

    let q = session("queueing").await;
    let first = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &q, "first")
        .await
        .unwrap();
    let second = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &q, "second")
        .await
        .unwrap();
    assert_eq!(second.status, TurnStatus::Queued);
    assert!(second.execution_arn.is_none());
    // The first ends (stopped here, to keep the test short): the second starts.
    w.engine
        .stop_execution(first.execution_arn.as_deref().unwrap(), None, None)
        .await
        .unwrap();
    let mut started = None;
    for _ in 0..200 {
        w.sessions.watch_once(&w.engine).await.unwrap();
        let turns = w.sessions.turns("acme", "alice", &q).await.unwrap();
        if turns[1].status == TurnStatus::Running {
            assert_eq!(turns[0].status, TurnStatus::Aborted);
            started = turns[1].execution_arn.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = started.expect("the queued turn started");
    assert_eq!(
        w.engine.describe_execution(&started).await.unwrap().status,
        "RUNNING"
    );

    let i = session("interrupting").await;
    let first = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &i, "first")
        .await
        .unwrap();
    let second = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &i, "second")
        .await
        .unwrap();
    assert_eq!(second.status, TurnStatus::Running);
    let d = w
        .engine
        .describe_execution(first.execution_arn.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(d.status, "ABORTED");
    let turns = w.sessions.turns("acme", "alice", &i).await.unwrap();
    assert_eq!(turns[0].status, TurnStatus::Aborted);
    assert_eq!(turns[0].error.as_deref(), Some("Interrupted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_whose_machine_is_gone_fails_with_the_engines_error() {
    let w = world().await;
    w.sessions
        .put_agent(
            "acme",
            "orphan",
            AgentConfig {
                state_machine: "missing".into(),
                ..AgentConfig::default()
            },
        )
        .await
        .unwrap();
    let s = w
        .sessions
        .create_session("acme", "alice", "orphan", None)
        .await
        .unwrap();
    let t = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &s.id, "hello")
        .await
        .unwrap();
    assert_eq!(t.status, TurnStatus::Failed);
    assert_eq!(t.error.as_deref(), Some("StateMachineDoesNotExist"));
    // The session takes the next message (nothing is left open).
    let again = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &s.id, "again")
        .await
        .unwrap();
    assert_eq!(again.n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sessions_working_context_lives_in_the_cache_with_a_ttl() {
    let w = world().await;
    agent(&w, "slow", waiting_machine(), TurnPolicy::Reject).await;
    let s = w
        .sessions
        .create_session("acme", "alice", "slow", None)
        .await
        .unwrap();
    assert_eq!(
        w.sessions.context("acme", "alice", &s.id).await.unwrap(),
        None
    );
    let t = w
        .sessions
        .send_message(&w.engine, "acme", "alice", &s.id, "research pricing")
        .await
        .unwrap();
    let c = w
        .sessions
        .context("acme", "alice", &s.id)
        .await
        .unwrap()
        .expect("context of the running turn");
    assert_eq!(c["turn"], 1);
    assert_eq!(c["status"], "RUNNING");
    assert_eq!(c["message"], "research pricing");
    assert_eq!(c["executionArn"], json!(t.execution_arn));
    let key = format!("agentry:session:{}:context", s.id);
    match w.cache.ttl(&key).await.unwrap() {
        agentry_cache::KeyTtl::Expires(left) => {
            assert!(left > Duration::from_secs(23 * 3600), "{left:?}")
        }
        other => panic!("the context has no TTL: {other:?}"),
    }
    // The watcher notes how far the execution has got.
    w.sessions.watch_once(&w.engine).await.unwrap();
    let c = w
        .sessions
        .context("acme", "alice", &s.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c["progress"]["lastEvent"], "WaitStateEntered", "{c}");
    // Others do not see it.
    assert!(matches!(
        w.sessions.context("acme", "bob", &s.id).await,
        Err(Error::NotFound(_))
    ));
    // The turn ends: the context says so.
    w.engine
        .stop_execution(t.execution_arn.as_deref().unwrap(), None, None)
        .await
        .unwrap();
    closed(&w, "alice", &s.id, 1).await;
    let c = w
        .sessions
        .context("acme", "alice", &s.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c["status"], "ABORTED");
}
