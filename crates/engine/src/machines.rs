//! State machines: create, update (a new revision), publish a version, describe, list. Every
//! definition is validated with `asl::validate` before it is stored; executions record the
//! revision they run, so updating a machine never changes a running execution.

use std::sync::Arc;

use agentry_asl::StateMachine;
use agentry_asl::validate::{MachineType, validate_text};
use agentry_storage::{Condition, ItemStoreExt, Query, Write};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::tables::{self, MACHINES};
use crate::{Engine, now_ms, obj};

/// DescribeStateMachine's answer (and one of ListStateMachines' entries, which use fewer fields).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateMachineDescription {
    pub state_machine_arn: String,
    pub name: String,
    pub definition: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub creation_date: i64,
    /// The revision described: the latest, or the one a version names.
    pub revision_id: String,
    /// Set when a version was described.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
}

/// PublishStateMachineVersion's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedVersion {
    pub state_machine_version_arn: String,
    pub creation_date: i64,
}

fn validate(definition: &str) -> Result<StateMachine> {
    validate_as(definition, MachineType::Standard)
}

fn validate_as(definition: &str, machine_type: MachineType) -> Result<StateMachine> {
    let invalid = |e: agentry_asl::ValidationError| Error::InvalidDefinition {
        code: e.code.to_string(),
        message: e.message.to_string(),
    };
    validate_text(definition, machine_type).map_err(invalid)?;
    let value = agentry_asl::definition::parse_text(definition).map_err(invalid)?;
    StateMachine::from_value(&value).map_err(invalid)
}

fn str_attr(attrs: &serde_json::Map<String, Value>, k: &str) -> String {
    attrs
        .get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn u64_attr(attrs: &serde_json::Map<String, Value>, k: &str) -> u64 {
    attrs.get(k).and_then(Value::as_u64).unwrap_or_default()
}

impl Engine {
    /// CreateStateMachine (type STANDARD). Creating again with the same definition answers with
    /// the existing machine, as AWS does; with another, `StateMachineAlreadyExists`.
    pub async fn create_state_machine(&self, name: &str, definition: &str) -> Result<String> {
        self.create_state_machine_of_type(name, definition, MachineType::Standard)
            .await
    }

    /// CreateStateMachine of either type. EXPRESS machines are stored and described like
    /// STANDARD ones and validated by Express rules; their executions are the caller's to run
    /// (StartSyncExecution runs them in memory).
    pub async fn create_state_machine_of_type(
        &self,
        name: &str,
        definition: &str,
        machine_type: MachineType,
    ) -> Result<String> {
        let name = tables::check_name(name)?;
        validate_as(definition, machine_type)?;
        let kind = match machine_type {
            MachineType::Standard => "STANDARD",
            MachineType::Express => "EXPRESS",
        };
        let arn = self.scope.state_machine_arn(&name);
        let now = now_ms();
        let head = obj(json!({
            "name": name, "arn": arn, "type": kind, "definition": definition,
            "revision": 1, "versions": 0, "created_ms": now,
        }));
        let rev = obj(json!({"definition": definition, "created_ms": now}));
        let writes = vec![
            Write::put(
                MACHINES,
                tables::machine_head(&self.scope.account, &name),
                head,
            )
            .when(Condition::Absent),
            Write::put(
                MACHINES,
                tables::machine_revision(&self.scope.account, &name, 1),
                rev,
            ),
        ];
        match self.inner.store.transact(writes).await {
            Ok(_) => Ok(arn),
            Err(e) if e.is_condition_failed() => {
                let existing = self.describe_state_machine(&arn).await?;
                if existing.definition == definition {
                    Ok(arn)
                } else {
                    Err(Error::StateMachineAlreadyExists(arn))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// UpdateStateMachine: stores the definition as a new revision; returns its revision id.
    pub async fn update_state_machine(&self, arn: &str, definition: &str) -> Result<String> {
        let (name, version) = self.scope.machine(arn)?;
        if version.is_some() {
            return Err(Error::InvalidArn(format!(
                "{arn:?}: a version cannot be updated"
            )));
        }
        validate(definition)?;
        loop {
            let head = self
                .inner
                .store
                .get(MACHINES, &tables::machine_head(&self.scope.account, &name))
                .await?
                .ok_or_else(|| Error::StateMachineDoesNotExist(arn.to_string()))?;
            let mut attrs = head.attributes.clone();
            if str_attr(&attrs, "definition") == definition {
                return Ok(u64_attr(&attrs, "revision").to_string());
            }
            let revision = u64_attr(&attrs, "revision") + 1;
            attrs.insert("revision".into(), json!(revision));
            attrs.insert("definition".into(), json!(definition));
            let rev = obj(json!({"definition": definition, "created_ms": now_ms()}));
            let writes = vec![
                Write::put(MACHINES, head.key.clone(), attrs)
                    .when(Condition::Version(head.version)),
                Write::put(
                    MACHINES,
                    tables::machine_revision(&self.scope.account, &name, revision),
                    rev,
                ),
            ];
            match self.inner.store.transact(writes).await {
                Ok(_) => return Ok(revision.to_string()),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// PublishStateMachineVersion: the current revision becomes the next version number. When
    /// the latest version already is the current revision, that version is answered.
    pub async fn publish_state_machine_version(
        &self,
        arn: &str,
        description: Option<&str>,
    ) -> Result<PublishedVersion> {
        let (name, _) = self.scope.machine(arn)?;
        loop {
            let head = self
                .inner
                .store
                .get(MACHINES, &tables::machine_head(&self.scope.account, &name))
                .await?
                .ok_or_else(|| Error::StateMachineDoesNotExist(arn.to_string()))?;
            let mut attrs = head.attributes.clone();
            let revision = u64_attr(&attrs, "revision");
            let versions = u64_attr(&attrs, "versions");
            let machine_arn = self.scope.state_machine_arn(&name);
            if versions > 0
                && let Some(v) = self
                    .inner
                    .store
                    .get(
                        MACHINES,
                        &tables::machine_version(&self.scope.account, &name, versions),
                    )
                    .await?
                && u64_attr(&v.attributes, "revision") == revision
            {
                return Ok(PublishedVersion {
                    state_machine_version_arn: format!("{machine_arn}:{versions}"),
                    creation_date: v
                        .attributes
                        .get("created_ms")
                        .and_then(Value::as_i64)
                        .unwrap_or_default(),
                });
            }
            let version = versions + 1;
            let now = now_ms();
            attrs.insert("versions".into(), json!(version));
            let v = obj(json!({
                "revision": revision, "definition": attrs["definition"], "created_ms": now,
                "description": description,
            }));
            let writes = vec![
                Write::put(MACHINES, head.key.clone(), attrs)
                    .when(Condition::Version(head.version)),
                Write::put(
                    MACHINES,
                    tables::machine_version(&self.scope.account, &name, version),
                    v,
                )
                .when(Condition::Absent),
            ];
            match self.inner.store.transact(writes).await {
                Ok(_) => {
                    return Ok(PublishedVersion {
                        state_machine_version_arn: format!("{machine_arn}:{version}"),
                        creation_date: now,
                    });
                }
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// DescribeStateMachine, of the latest revision or of a version (`NAME:VERSION` ARNs).
    pub async fn describe_state_machine(&self, arn: &str) -> Result<StateMachineDescription> {
        let (name, version) = self.scope.machine(arn)?;
        let missing = || Error::StateMachineDoesNotExist(arn.to_string());
        let head = self
            .inner
            .store
            .get(MACHINES, &tables::machine_head(&self.scope.account, &name))
            .await?
            .ok_or_else(missing)?;
        let h = &head.attributes;
        let mut d = StateMachineDescription {
            state_machine_arn: self.scope.state_machine_arn(&name),
            name: name.clone(),
            definition: str_attr(h, "definition"),
            kind: str_attr(h, "type"),
            creation_date: h
                .get("created_ms")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            revision_id: u64_attr(h, "revision").to_string(),
            version_description: None,
        };
        if let Some(v) = version {
            let item = self
                .inner
                .store
                .get(
                    MACHINES,
                    &tables::machine_version(&self.scope.account, &name, v),
                )
                .await?
                .ok_or_else(missing)?;
            let a = &item.attributes;
            d.state_machine_arn = format!("{}:{v}", d.state_machine_arn);
            d.definition = str_attr(a, "definition");
            d.revision_id = u64_attr(a, "revision").to_string();
            d.creation_date = a
                .get("created_ms")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            d.version_description = a
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(d)
    }

    /// ListStateMachines: every machine of the account, latest revision, by name.
    pub async fn list_state_machines(&self) -> Result<Vec<StateMachineDescription>> {
        let items = self
            .inner
            .store
            .query_all(&Query::partition(
                MACHINES,
                tables::machines(&self.scope.account),
            ))
            .await?;
        let mut out = Vec::new();
        for item in items {
            out.push(
                self.describe_state_machine(&self.scope.state_machine_arn(&item.key.sk))
                    .await?,
            );
        }
        Ok(out)
    }

    /// The revision a start names: `(name, revision, version)`.
    pub(crate) async fn resolve_machine(&self, arn: &str) -> Result<(String, u64, Option<u64>)> {
        let d = self.describe_state_machine(arn).await?;
        let (name, version) = self.scope.machine(arn)?;
        let revision = d
            .revision_id
            .parse()
            .map_err(|_| Error::Corrupt(format!("machine {name}: revision id")))?;
        Ok((name, revision, version))
    }

    /// A revision's parsed definition, cached: revisions never change.
    pub(crate) async fn definition(
        &self,
        account: &str,
        name: &str,
        revision: u64,
    ) -> Result<Arc<StateMachine>> {
        let key = (account.to_string(), name.to_string(), revision);
        if let Some(d) = self
            .inner
            .definitions
            .lock()
            .expect("definitions lock")
            .get(&key)
        {
            return Ok(d.clone());
        }
        let item = self
            .inner
            .store
            .get(MACHINES, &tables::machine_revision(account, name, revision))
            .await?
            .ok_or_else(|| {
                Error::StateMachineDoesNotExist(format!("{name} revision {revision}"))
            })?;
        let text = str_attr(&item.attributes, "definition");
        let value = agentry_asl::definition::parse_text(&text)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let def =
            Arc::new(StateMachine::from_value(&value).map_err(|e| Error::Corrupt(e.to_string()))?);
        self.inner
            .definitions
            .lock()
            .expect("definitions lock")
            .insert(key, def.clone());
        Ok(def)
    }
}
