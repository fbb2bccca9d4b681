//! The Task state's `Resource`: which ARNs AWS recognises, and which integration patterns an
//! Express state machine may use.

use serde_json::Value;

use super::{Diagnostics, MachineType};

/// Optimised service integrations: `arn:<partition>:states:::<service>:<action>`, with the
/// integration patterns each action supports beyond request-response.
const SERVICE_ACTIONS: &[(&str, &[(&str, Patterns)])] = &[
    ("lambda", &[("invoke", TOKEN)]),
    (
        "dynamodb",
        &[
            ("getItem", NONE),
            ("putItem", NONE),
            ("deleteItem", NONE),
            ("updateItem", NONE),
        ],
    ),
    ("sns", &[("publish", TOKEN)]),
    ("sqs", &[("sendMessage", TOKEN)]),
    ("states", &[("startExecution", SYNC_TOKEN)]),
    ("events", &[("putEvents", TOKEN)]),
    ("apigateway", &[("invoke", TOKEN)]),
    ("http", &[("invoke", NONE)]),
    ("ecs", &[("runTask", SYNC_TOKEN)]),
    ("batch", &[("submitJob", SYNC_TOKEN)]),
    ("glue", &[("startJobRun", SYNC_TOKEN)]),
    ("databrew", &[("startJobRun", SYNC)]),
    (
        "bedrock",
        &[("invokeModel", NONE), ("createModelCustomizationJob", SYNC)],
    ),
    ("mediaconvert", &[("createJob", SYNC)]),
    (
        "athena",
        &[
            ("startQueryExecution", SYNC_TOKEN),
            ("stopQueryExecution", NONE),
            ("getQueryExecution", NONE),
            ("getQueryResults", NONE),
        ],
    ),
    (
        "codebuild",
        &[
            ("startBuild", SYNC_TOKEN),
            ("stopBuild", NONE),
            ("batchDeleteBuilds", NONE),
            ("batchGetReports", NONE),
            ("startBuildBatch", SYNC),
            ("stopBuildBatch", NONE),
            ("retryBuildBatch", SYNC),
            ("deleteBuildBatch", NONE),
        ],
    ),
    (
        "sagemaker",
        &[
            ("createEndpoint", NONE),
            ("createEndpointConfig", NONE),
            ("createHyperParameterTuningJob", SYNC_TOKEN),
            ("createLabelingJob", SYNC_TOKEN),
            ("createModel", NONE),
            ("createProcessingJob", SYNC_TOKEN),
            ("createTrainingJob", SYNC_TOKEN),
            ("createTransformJob", SYNC_TOKEN),
            ("updateEndpoint", NONE),
        ],
    ),
    (
        "elasticmapreduce",
        &[
            ("createCluster", SYNC),
            ("terminateCluster", SYNC),
            ("addStep", SYNC),
            ("cancelStep", NONE),
            ("setClusterTerminationProtection", NONE),
            ("modifyInstanceFleetByName", NONE),
            ("modifyInstanceGroupByName", NONE),
        ],
    ),
    (
        "emr-containers",
        &[
            ("startJobRun", SYNC),
            ("createVirtualCluster", NONE),
            ("deleteVirtualCluster", SYNC),
        ],
    ),
    (
        "emr-serverless",
        &[
            ("createApplication", SYNC),
            ("startApplication", SYNC),
            ("stopApplication", SYNC),
            ("deleteApplication", SYNC),
            ("startJobRun", SYNC),
            ("cancelJobRun", SYNC),
        ],
    ),
    (
        "eks",
        &[
            ("createCluster", SYNC),
            ("deleteCluster", SYNC),
            ("createFargateProfile", SYNC),
            ("deleteFargateProfile", SYNC),
            ("createNodegroup", SYNC),
            ("deleteNodegroup", SYNC),
            ("runJob", SYNC),
            ("call", NONE),
        ],
    ),
];

/// Parameters an optimised integration cannot run without (given plainly or as `Name.$`).
const REQUIRED_PARAMETERS: &[(&str, &[&str])] = &[
    ("lambda:invoke", &["FunctionName"]),
    ("sqs:sendMessage", &["QueueUrl", "MessageBody"]),
    ("states:startExecution", &["StateMachineArn"]),
    ("dynamodb:getItem", &["TableName", "Key"]),
    ("dynamodb:putItem", &["TableName", "Item"]),
    ("dynamodb:deleteItem", &["TableName", "Key"]),
    ("dynamodb:updateItem", &["TableName", "Key"]),
    ("events:putEvents", &["Entries"]),
    ("glue:startJobRun", &["JobName"]),
    ("batch:submitJob", &["JobDefinition", "JobName", "JobQueue"]),
    ("ecs:runTask", &["TaskDefinition"]),
    ("apigateway:invoke", &["ApiEndpoint", "Method"]),
];

/// Checks an optimised integration's `Parameters` (or `Arguments`) object at `path` for the
/// fields the integration requires.
pub(super) fn check_parameters(
    resource: &str,
    parameters: &Value,
    path: &str,
    d: &mut Diagnostics,
) {
    let Some(params) = parameters.as_object() else {
        return;
    };
    let Some(integration) = resource
        .split(":::")
        .nth(1)
        .filter(|_| resource.starts_with("arn:"))
    else {
        return;
    };
    let integration = integration.split('.').next().unwrap_or(integration);
    let Some((_, required)) = REQUIRED_PARAMETERS.iter().find(|(i, _)| *i == integration) else {
        return;
    };
    for field in *required {
        if !params.contains_key(*field) && !params.contains_key(&format!("{field}.$")) {
            d.schema(
                format!("The field '{field}' is required but was missing"),
                path,
            );
        }
    }
}

#[derive(Clone, Copy)]
struct Patterns {
    sync: bool,
    token: bool,
}

const NONE: Patterns = Patterns {
    sync: false,
    token: false,
};
const SYNC: Patterns = Patterns {
    sync: true,
    token: false,
};
const TOKEN: Patterns = Patterns {
    sync: false,
    token: true,
};
const SYNC_TOKEN: Patterns = Patterns {
    sync: true,
    token: true,
};

/// How a recognised resource runs.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Service { sync: bool, token: bool },
    Activity,
    Other,
}

fn classify(arn: &str) -> Option<Kind> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, rest] = parts.as_slice() else {
        return None;
    };
    if *scheme != "arn" || partition.is_empty() || service.is_empty() {
        return None;
    }
    if *service != "states" {
        return Some(Kind::Other);
    }
    if region.is_empty() && account.is_empty() {
        return service_integration(rest);
    }
    if rest.starts_with("activity:") {
        return Some(Kind::Activity);
    }
    Some(Kind::Other)
}

/// `<service>:<action>[.sync[:2]|.waitForTaskToken]` or `aws-sdk:<service>:<action>[...]`.
fn service_integration(rest: &str) -> Option<Kind> {
    let (body, suffix) = match rest.find('.') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (sync, token) = match suffix {
        "" => (false, false),
        ".sync" | ".sync:2" => (true, false),
        ".waitForTaskToken" => (false, true),
        _ => return None,
    };
    if let Some(sdk) = body.strip_prefix("aws-sdk:") {
        let (svc, action) = sdk.split_once(':')?;
        return (!svc.is_empty() && !action.is_empty() && !action.contains(':') && !sync)
            .then_some(Kind::Service { sync, token });
    }
    let (svc, action) = body.split_once(':')?;
    let (_, actions) = SERVICE_ACTIONS.iter().find(|(s, _)| *s == svc)?;
    let (_, patterns) = actions.iter().find(|(a, _)| *a == action)?;
    if (sync && !patterns.sync) || (token && !patterns.token) {
        return None;
    }
    Some(Kind::Service { sync, token })
}

/// Checks a Task state's `Resource` string at `path` (`/States/<name>/Resource`).
pub(super) fn check(resource: &str, path: &str, machine_type: MachineType, d: &mut Diagnostics) {
    let Some(kind) = classify(resource) else {
        d.schema(
            format!(
                "The resource provided {resource} is not recognized. The value is not a valid \
                 resource ARN, or the resource is not available in this region."
            ),
            path,
        );
        return;
    };
    if machine_type != MachineType::Express {
        return;
    }
    match kind {
        Kind::Service { sync: true, .. } => d.schema(
            "Express state machine does not support '.sync' service integration",
            path,
        ),
        // AWS's text has two spaces before "at" here.
        Kind::Service { token: true, .. } => d.schema(
            "Express state machine does not support '.waitForTaskToken' service integration ",
            path,
        ),
        Kind::Activity => d.schema("Express state machine does not support Activity ARN", path),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_integrations_and_patterns() {
        assert_eq!(
            classify("arn:aws:states:::lambda:invoke"),
            Some(Kind::Service {
                sync: false,
                token: false
            })
        );
        assert_eq!(
            classify("arn:aws:states:::states:startExecution.sync:2"),
            Some(Kind::Service {
                sync: true,
                token: false
            })
        );
        assert_eq!(
            classify("arn:aws:states:::aws-sdk:s3:listBuckets.waitForTaskToken"),
            Some(Kind::Service {
                sync: false,
                token: true
            })
        );
        assert_eq!(
            classify("arn:aws:lambda:us-east-1:111111111111:function:f"),
            Some(Kind::Other)
        );
        assert_eq!(
            classify("arn:aws:states:us-east-1:111111111111:activity:a"),
            Some(Kind::Activity)
        );
        assert_eq!(classify("arn:aws:states:::dynamodb:query"), None);
        assert_eq!(classify("arn:aws:states:::dynamodb:getItem.sync"), None);
        assert_eq!(classify("arn:aws:states:::nosuch:thing"), None);
        assert_eq!(classify("not-an-arn"), None);
    }
}
