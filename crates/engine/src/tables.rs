//! Where the engine keeps things in the store: table definitions, item keys and the ARNs
//! that name state machines and executions.
//!
//! - `agentry_machines`: partition `machines#ACCOUNT` holds one head item per state machine of
//!   an account (sort key: its name); partition `machine#ACCOUNT#NAME` holds its revisions
//!   (`rev#00000001`), published versions (`ver#00000001`) and aliases (`alias#NAME`).
//!   Revisions outlive a deleted machine, so that a machine created again under the same name
//!   numbers its revisions on and a cached definition never names two texts.
//! - `agentry_executions`: partition = execution ARN; sort key `exec` is the execution record
//!   (the serialised interpreter state, status, dates; a long one in `exec#part#TAG#0000`...
//!   items beside it), `h#0000000001`... its history events.
//!   Partition `token#TOKEN` holds a task token. Indexes list executions by state machine and
//!   by state machine and status, newest first.
//! - `agentry_timers`: partition `timers`, sorted by due time: the durable timers.
//! - `agentry_outbox`: partition `outbox`, sorted by creation time: the queue work a committed
//!   step still has to send (task invocations, a queued start; timers and tokens too when a
//!   step has more than one transaction holds).

use agentry_storage::{Key, TableSpec};

use crate::error::{Error, Result};

pub const MACHINES: &str = "agentry_machines";
pub const EXECUTIONS: &str = "agentry_executions";
pub const TIMERS: &str = "agentry_timers";
pub const OUTBOX: &str = "agentry_outbox";

pub const BY_MACHINE: &str = "by-machine";
pub const BY_MACHINE_STATUS: &str = "by-machine-status";

/// The region and account ARNs name when nothing else is configured.
pub const REGION: &str = "local";
pub const ACCOUNT: &str = "000000000000";

/// Where a handle of the engine lives: every state machine and execution belongs to one
/// region and account, and is invisible from any other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub account: String,
}

impl Scope {
    pub fn new(region: &str, account: &str) -> Result<Self> {
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::InvalidArn(format!(
                "account {account:?}: an account id is 12 digits"
            )));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::InvalidArn(format!(
                "region {region:?}: a region is lowercase letters, digits and dashes"
            )));
        }
        Ok(Self {
            region: region.into(),
            account: account.into(),
        })
    }

    pub fn state_machine_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.region, self.account
        )
    }

    /// Whether an ARN's region and account fields are this scope's.
    fn owns(&self, region: &str, account: &str) -> bool {
        region == self.region && account == self.account
    }

    /// A state machine ARN (or bare name), optionally qualified by a version or an alias:
    /// `(name, qualifier)`. An ARN of another region or account names nothing here:
    /// `StateMachineDoesNotExist`, exactly as for a machine that does not exist.
    pub fn machine(&self, arn: &str) -> Result<(String, Qualifier)> {
        let (region, account, name, qualifier) = parse_machine_arn(arn)?;
        match (region, account) {
            (Some(r), Some(a)) if !self.owns(&r, &a) => {
                Err(Error::StateMachineDoesNotExist(arn.to_string()))
            }
            _ => Ok((name, qualifier)),
        }
    }

    /// An alias ARN of this scope: `(state machine name, alias name)`; of another region or
    /// account, or not naming an alias, `ResourceNotFound` / `InvalidArn`.
    pub fn alias(&self, arn: &str) -> Result<(String, String)> {
        match self.machine(arn) {
            Ok((name, Qualifier::Alias(alias))) => Ok((name, alias)),
            Ok(_) => Err(Error::InvalidArn(format!(
                "Invalid Arn: 'Resource type not valid in this context: {arn}'"
            ))),
            Err(Error::StateMachineDoesNotExist(_)) => Err(Error::ResourceNotFound(format!(
                "Resource not found: '{arn}'"
            ))),
            Err(e) => Err(e),
        }
    }

    pub fn activity_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:activity:{name}",
            self.region, self.account
        )
    }

    /// An execution ARN of this scope: `(state machine name, execution name)`; of another
    /// region or account, `ExecutionDoesNotExist`.
    pub fn execution(&self, arn: &str) -> Result<(String, String)> {
        let (region, account, machine, name) = parse_execution_arn(arn)?;
        if !self.owns(&region, &account) {
            return Err(Error::ExecutionDoesNotExist(arn.to_string()));
        }
        Ok((machine, name))
    }

    /// Whether an execution ARN belongs to this scope.
    pub fn owns_execution(&self, arn: &str) -> bool {
        self.execution(arn).is_ok()
    }
}

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

/// The partition of an account's state machine heads.
pub fn machines(account: &str) -> String {
    format!("machines#{account}")
}

pub fn machine_head(account: &str, name: &str) -> Key {
    Key::new(machines(account), name)
}

pub fn machine_revision(account: &str, name: &str, revision: u64) -> Key {
    Key::new(
        format!("machine#{account}#{name}"),
        format!("rev#{revision:08}"),
    )
}

pub fn machine_version(account: &str, name: &str, version: u64) -> Key {
    Key::new(
        format!("machine#{account}#{name}"),
        format!("ver#{version:08}"),
    )
}

pub fn machine_alias(account: &str, name: &str, alias: &str) -> Key {
    Key::new(
        format!("machine#{account}#{name}"),
        format!("alias#{alias}"),
    )
}

pub const REVISION_PREFIX: &str = "rev#";
pub const VERSION_PREFIX: &str = "ver#";
pub const ALIAS_PREFIX: &str = "alias#";

/// The partition of a state machine's revisions, versions and aliases.
pub fn machine_partition(account: &str, name: &str) -> String {
    format!("machine#{account}#{name}")
}

pub fn execution(arn: &str) -> Key {
    Key::new(arn, "exec")
}

/// Part `i` of a long execution record written under `tag`.
pub fn record_part(arn: &str, tag: &str, i: usize) -> Key {
    Key::new(arn, format!("exec#part#{tag}#{i:04}"))
}

pub fn record_parts_prefix(tag: &str) -> String {
    format!("exec#part#{tag}#")
}

/// The highest event id a history key holds (far above the 25,000-event cap).
pub const MAX_EVENT_ID: u64 = 9_999_999_999;

/// The history item whose first event is `id`.
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

/// What follows a state machine's name in its ARN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Qualifier {
    /// The machine itself: its latest revision.
    Latest,
    /// A published version (`NAME:3`).
    Version(u64),
    /// An alias (`NAME:prod`).
    Alias(String),
}

/// A state machine ARN (or bare name), optionally qualified by a version or an alias:
/// `(region, account, name, qualifier)`; a bare name has no region or account.
pub fn parse_machine_arn(arn: &str) -> Result<(Option<String>, Option<String>, String, Qualifier)> {
    let rest = match arn.strip_prefix("arn:aws:states:") {
        None => return check_name(arn).map(|n| (None, None, n, Qualifier::Latest)),
        Some(rest) => rest,
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let scoped = |r: &str, a: &str, name: &str, v| {
        Ok((
            Some(r.to_string()),
            Some(a.to_string()),
            check_name(name)?,
            v,
        ))
    };
    match parts.as_slice() {
        [r, a, "stateMachine", name] => scoped(r, a, name, Qualifier::Latest),
        [r, a, "stateMachine", name, qualifier] => match qualifier.parse::<u64>() {
            Ok(v) => scoped(r, a, name, Qualifier::Version(v)),
            Err(_) => {
                let alias = check_alias_name(qualifier).map_err(|_| {
                    Error::InvalidArn(format!(
                        "Invalid Arn: 'Qualifier \"{qualifier}\" of {arn} is neither a version number nor an alias name'"
                    ))
                })?;
                scoped(r, a, name, Qualifier::Alias(alias))
            }
        },
        _ => Err(Error::InvalidArn(format!(
            "{arn:?} is not a state machine arn"
        ))),
    }
}

/// An execution ARN: `(region, account, state machine name, execution name)`.
pub fn parse_execution_arn(arn: &str) -> Result<(String, String, String, String)> {
    let parts: Vec<&str> = arn
        .strip_prefix("arn:aws:states:")
        .unwrap_or("")
        .split(':')
        .collect();
    match parts.as_slice() {
        [_, _, "express", ..] => Err(Error::InvalidArn(format!(
            "Invalid Arn: '{arn}': executions of EXPRESS state machines are not supported by this operation"
        ))),
        [r, a, "execution", machine, name] => Ok((
            (*r).to_string(),
            (*a).to_string(),
            (*machine).to_string(),
            (*name).to_string(),
        )),
        _ => Err(Error::InvalidArn(format!(
            "{arn:?} is not an execution arn"
        ))),
    }
}

/// The account of an execution ARN already known to be well formed.
pub fn account_of(execution_arn: &str) -> String {
    parse_execution_arn(execution_arn)
        .map(|(_, a, _, _)| a)
        .unwrap_or_default()
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

/// AWS's rule for alias names: 1 to 80 letters, digits, `-`, `_` and `.`, not all digits (a
/// number is a version).
pub fn check_alias_name(name: &str) -> Result<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    if name.is_empty()
        || name.len() > 80
        || !name.chars().all(allowed)
        || name.chars().all(|c| c.is_ascii_digit())
    {
        return Err(Error::Validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(?=.*[a-zA-Z_\\-\\.])[a-zA-Z0-9_\\-\\.]+$"
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_round_trip_and_bad_ones_are_named() {
        let scope = Scope::new(REGION, ACCOUNT).unwrap();
        let arn = scope.state_machine_arn("flow");
        assert_eq!(
            scope.machine(&arn).unwrap(),
            ("flow".into(), Qualifier::Latest)
        );
        assert_eq!(
            scope.machine("flow").unwrap(),
            ("flow".into(), Qualifier::Latest)
        );
        assert_eq!(
            scope.machine(&format!("{arn}:3")).unwrap(),
            ("flow".into(), Qualifier::Version(3))
        );
        assert_eq!(
            scope.machine(&format!("{arn}:prod")).unwrap(),
            ("flow".into(), Qualifier::Alias("prod".into()))
        );
        assert_eq!(scope.alias(&format!("{arn}:prod")).unwrap().1, "prod");
        assert!(matches!(scope.alias(&arn), Err(Error::InvalidArn(_))));
        assert!(scope.machine(&format!("{arn}:bad alias")).is_err());
        assert!(check_alias_name("123").is_err());
        assert!(check_alias_name("v1.2-beta_x").is_ok());
        assert!(scope.machine("arn:aws:states:local:0:activity:x").is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name(&"x".repeat(81)).is_err());
        let (m, e) = scope
            .execution("arn:aws:states:local:000000000000:execution:flow:run-1")
            .unwrap();
        assert_eq!((m.as_str(), e.as_str()), ("flow", "run-1"));
    }

    #[test]
    fn another_accounts_arns_name_nothing() {
        let scope = Scope::new("local", "111111111111").unwrap();
        let other = Scope::new("local", "222222222222").unwrap();
        let arn = other.state_machine_arn("flow");
        assert!(matches!(
            scope.machine(&arn),
            Err(Error::StateMachineDoesNotExist(_))
        ));
        assert!(matches!(
            scope.execution("arn:aws:states:local:222222222222:execution:flow:run"),
            Err(Error::ExecutionDoesNotExist(_))
        ));
        assert!(matches!(
            scope.execution("arn:aws:states:eu-west-1:111111111111:execution:flow:run"),
            Err(Error::ExecutionDoesNotExist(_))
        ));
        assert!(Scope::new("local", "12").is_err());
        assert!(Scope::new("Bad Region", "111111111111").is_err());
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
