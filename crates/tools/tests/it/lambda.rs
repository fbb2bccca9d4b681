//! Lambda tools against moto in server mode (moto's Lambda without Docker echoes the payload,
//! or answers with results queued through its `/moto-api`). The server is the one at
//! `AGENTRY_TEST_AWS_ENDPOINT`, else one the test starts with `AGENTRY_TEST_PYTHON` (default
//! `python3`) if it has `moto[server]`; without either the test says it was skipped, and fails
//! under `CI=true`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agentry_tools::{Call, InvokerSpec, Registry, ToolSpec};
use serde_json::json;

struct Moto {
    url: String,
    child: Option<Child>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn moto() -> Option<Moto> {
    if let Ok(url) = std::env::var("AGENTRY_TEST_AWS_ENDPOINT") {
        return Some(Moto { url, child: None });
    }
    let python = std::env::var("AGENTRY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_moto = Command::new(&python)
        .args(["-c", "import moto.server, flask"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_moto {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto {
        url: format!("http://127.0.0.1:{port}"),
        child: Some(child),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(moto);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("moto server did not start on port {port}");
}

/// An empty zip archive (just the end-of-central-directory record), base64.
const EMPTY_ZIP: &str = "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==";

#[tokio::test]
async fn lambda_tools_invoke_functions_through_the_aws_sdk() {
    let Some(moto) = moto().await else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no moto server under CI=true"
        );
        eprintln!("skipped: no AGENTRY_TEST_AWS_ENDPOINT and no python with moto[server]");
        return;
    };
    // SAFETY: the AWS SDK reads credentials from the environment; this test sets the same
    // values each time and no test reads these variables.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    }
    let http = reqwest::Client::new();
    http.post(format!("{}/moto-api/config", moto.url))
        .json(&json!({"lambda": {"use_docker": false}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // IAM's CreateRole (Lambda checks the function's role can be assumed), as the query API
    // takes it.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "CreateRole")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", "lambda-role")
        .append_pair("AssumeRolePolicyDocument", trust)
        .finish();
    http.post(format!("{}/", moto.url))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // CreateFunction, as Lambda's REST API takes it.
    http.post(format!("{}/2015-03-31/functions", moto.url))
        .header("authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0")
        .json(&json!({
            "FunctionName": "pricing", "Runtime": "python3.12", "Handler": "index.handler",
            "Role": "arn:aws:iam::123456789012:role/lambda-role", "Code": {"ZipFile": EMPTY_ZIP}
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let r = Registry::new();
    let spec = |name: &str, function: &str| {
        ToolSpec::new(
            name,
            InvokerSpec::Lambda {
                function: function.into(),
                region: Some("us-east-1".into()),
                endpoint_url: Some(moto.url.clone()),
            },
        )
        .output_schema(json!({"type": "object"}))
    };
    r.register(spec("pricing", "pricing")).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    r.register(ToolSpec::new(
        "unreachable",
        InvokerSpec::Lambda {
            function: "pricing".into(),
            region: Some("us-east-1".into()),
            endpoint_url: Some(format!("http://{closed}")),
        },
    ))
    .unwrap();
    // moto's Lambda echoes the event.
    let out = r
        .invoke(Call::new("pricing", json!({"product": "widget"})))
        .await
        .unwrap();
    assert_eq!(out, json!({"product": "widget"}));
    // A queued result is what the function returns next.
    let queue = |result: &str| {
        http.post(format!(
            "{}/moto-api/static/lambda-simple/response",
            moto.url
        ))
        .json(&json!({"results": [result], "region": "us-east-1"}))
        .send()
    };
    queue(r#"{"price": 10}"#)
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    assert_eq!(
        r.invoke(Call::new("pricing", json!({}))).await.unwrap(),
        json!({"price": 10})
    );
    queue("not json at all")
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let e = r.invoke(Call::new("pricing", json!({}))).await.unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    queue(r#"{"errorType": "Pricing.NoData", "errorMessage": "none"}"#)
        .await
        .unwrap();
    // Lambda marks a failure with X-Amz-Function-Error, not by the payload's shape: a
    // function that returns such a document has succeeded.
    let out = r.invoke(Call::new("pricing", json!({}))).await.unwrap();
    assert_eq!(out["errorType"], json!("Pricing.NoData"));
    queue(r#"[1, 2]"#).await.unwrap();
    let e = r.invoke(Call::new("pricing", json!({}))).await.unwrap_err();
    assert_eq!(e.name(), "Tools.SchemaValidation");
    // No Lambda endpoint answering: a clear failure naming the function.
    let e = r
        .invoke(Call::new("unreachable", json!({})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "Tools.Failed");
    assert!(e.to_string().contains("Lambda Invoke of pricing"), "{e}");
}
