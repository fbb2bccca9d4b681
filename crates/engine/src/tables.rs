//! Where the engine keeps things in the store: table definitions, item keys and the ARNs
//! that name state machines and executions.
//!
//! - `agentry_machines`: partition `machines` holds one head item per state machine (sort key:
//!   its name); partition `machine#NAME` holds its revisions (`rev#00000001`) and published
//!   versions (`ver#00000001`).
//! - `agentry_executions`: partition = execution ARN; sort key `exec` is the execution record
//!   (the serialised interpreter state, status, dates), `h#0000000001`... its history events.
//!   Partition `token#TOKEN` holds a task token. Indexes list executions by state machine and
//!   by state machine and status, newest first.
//! - `agentry_timers`: partition `timers`, sorted by due time: the durable timers.
//! - `agentry_outbox`: partition `outbox`, sorted by creation time: the work a committed step
//!   still has to hand out (task invocations, timers, task tokens).

use agentry_storage::{Key, TableSpec};

use crate::error::{Error, Result};

pub const MACHINES: &str = "agentry_machines";
pub const EXECUTIONS: &str = "agentry_executions";
pub const TIMERS: &str = "agentry_timers";
pub const OUTBOX: &str = "agentry_outbox";

pub const BY_MACHINE: &str = "by-machine";
pub const BY_MACHINE_STATUS: &str = "by-machine-status";

pub const REGION: &str = "local";
pub const ACCOUNT: &str = "000000000000";

pub fn specs() -> Vec<TableSpec> {
    vec![
        TableSpec::new(MACHINES),
        TableSpec::new(EXECUTIONS)
            .with_index(BY_MACHINE, "machine_arn", "listed")
            .with_index(BY_MACHINE_STATUS, "machine_status", "listed"),
        TableSpec::new(TIMERS),
        TableSpec::new(OUTBOX),
    ]
}

pub fn machine_head(name: &str) -> Key {
    Key::new("machines", name)
}

pub fn machine_revision(name: &str, revision: u64) -> Key {
    Key::new(format!("machine#{name}"), format!("rev#{revision:08}"))
}

pub fn machine_version(name: &str, version: u64) -> Key {
    Key::new(format!("machine#{name}"), format!("ver#{version:08}"))
}

pub fn execution(arn: &str) -> Key {
    Key::new(arn, "exec")
}

pub fn event(arn: &str, id: u64) -> Key {
    Key::new(arn, format!("h#{id:010}"))
}

pub const EVENT_PREFIX: &str = "h#";

pub fn token(token: &str) -> Key {
    Key::new(format!("token#{token}"), "token")
}

pub fn timer(at_ms: i64, execution: &str, timer: u64) -> Key {
    Key::new(
        "timers",
        format!("{:016}#{execution}#{timer}", at_ms.max(0)),
    )
}

/// The sort key prefix of timers due at or before `at_ms`: every key sorts below it.
pub fn timers_due_by(at_ms: i64) -> String {
    format!("{:016}$", at_ms.max(0))
}

pub fn outbox(created_ms: i64, execution: &str, version: u64, part: usize) -> Key {
    Key::new(
        "outbox",
        format!("{:016}#{execution}#{version}#{part}", created_ms.max(0)),
    )
}

pub fn state_machine_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
}

/// A state machine ARN (or bare name), optionally qualified by a version: `(name, version)`.
pub fn parse_machine_arn(arn: &str) -> Result<(String, Option<u64>)> {
    let rest = match arn.strip_prefix("arn:aws:states:") {
        None => return check_name(arn).map(|n| (n, None)),
        Some(rest) => rest,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [_, _, "stateMachine", name] => Ok((check_name(name)?, None)),
        [_, _, "stateMachine", name, version] => {
            let v = version.parse::<u64>().map_err(|_| {
                Error::InvalidArn(format!(
                    "{arn:?}: version \"{version}\" is not a number (aliases are not supported yet)"
                ))
            })?;
            Ok((check_name(name)?, Some(v)))
        }
        _ => Err(Error::InvalidArn(format!(
            "{arn:?} is not a state machine arn"
        ))),
    }
}

/// An execution ARN: `(state machine name, execution name)`.
pub fn parse_execution_arn(arn: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = arn
        .strip_prefix("arn:aws:states:")
        .unwrap_or("")
        .split(':')
        .collect();
    match parts.as_slice() {
        [_, _, "execution", machine, name] => Ok(((*machine).to_string(), (*name).to_string())),
        _ => Err(Error::InvalidArn(format!(
            "{arn:?} is not an execution arn"
        ))),
    }
}

/// AWS's name rules for state machines and executions: 1 to 80 characters, none of
/// whitespace, brackets, wildcards, punctuation AWS reserves, or control characters.
pub fn check_name(name: &str) -> Result<String> {
    let bad =
        |c: char| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c);
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(bad) {
        return Err(Error::InvalidName(format!(
            "{name:?}: names are 1 to 80 characters without whitespace, brackets, wildcards or special characters"
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_and_bad_ones_are_named() {
        let arn = state_machine_arn("flow");
        assert_eq!(parse_machine_arn(&arn).unwrap(), ("flow".into(), None));
        assert_eq!(
            parse_machine_arn(&format!("{arn}:3")).unwrap(),
            ("flow".into(), Some(3))
        );
        assert!(parse_machine_arn("arn:aws:states:local:0:activity:x").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name(&"x".repeat(81)).is_err());
        let (m, e) =
            parse_execution_arn("arn:aws:states:local:000000000000:execution:flow:run-1").unwrap();
        assert_eq!((m.as_str(), e.as_str()), ("flow", "run-1"));
    }

    #[test]
    fn timers_sort_by_due_time() {
        let a = timer(5, "arn:z", 1).sk;
        let b = timer(40, "arn:a", 1).sk;
        assert!(a < b);
        assert!(b < timers_due_by(40));
        assert!(timers_due_by(39) < b);
    }
}
