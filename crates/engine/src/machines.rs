//! State machines: create, update (a new revision), publish a version, describe, list, delete.
//! Every definition is validated with `asl::validate` before it is stored; executions record
//! the revision they run, so updating a machine never changes a running execution.
//!
//! DeleteStateMachine marks the machine DELETING: it starts no more executions, its running
//! ones finish, and once none runs it is gone (with its versions and aliases). The last step
//! is taken by whichever call next looks at the machine; its revisions stay behind so that
//! executions (and a machine created again under the name) never see a revision change.

use std::sync::Arc;

use agentry_asl::StateMachine;
use agentry_asl::validate::{MachineType, validate_text};
use agentry_storage::{Condition, ItemStoreExt, Query, Write};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::tables::{self, MACHINES, Qualifier};
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
    /// `ACTIVE`, or `DELETING` while the executions of a deleted machine finish.
    pub status: String,
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
        for _ in 0..10 {
            // A machine deleted before leaves its revisions: number on from them.
            let revision = self.last_revision(&name).await? + 1;
            let now = now_ms();
            let head = obj(json!({
                "name": name, "arn": arn, "type": kind, "definition": definition,
                "revision": revision, "versions": 0, "created_ms": now, "status": "ACTIVE",
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
                    tables::machine_revision(&self.scope.account, &name, revision),
                    rev,
                )
                .when(Condition::Absent),
            ];
            match self.inner.store.transact(writes).await {
                Ok(_) => return Ok(arn),
                Err(e) if e.is_condition_failed() => {
                    let existing = match self.describe_state_machine(&arn).await {
                        Ok(d) => d,
                        // Deleted meanwhile (or a rival took the revision number): again.
                        Err(Error::StateMachineDoesNotExist(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    if existing.status == "DELETING" {
                        return Err(Error::StateMachineDeleting(format!(
                            "State machine is being deleted: {arn}"
                        )));
                    }
                    return if existing.definition == definition && existing.kind == kind {
                        Ok(arn)
                    } else {
                        Err(Error::StateMachineAlreadyExists(format!(
                            "State Machine Already Exists: '{arn}'"
                        )))
                    };
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contended(arn))
    }

    /// The highest revision number stored for a machine name (0 when none).
    async fn last_revision(&self, name: &str) -> Result<u64> {
        let q = Query::partition(
            MACHINES,
            tables::machine_partition(&self.scope.account, name),
        )
        .prefix(tables::REVISION_PREFIX)
        .descending()
        .limit(1);
        let page = self.inner.store.query(&q).await?;
        Ok(page
            .items
            .first()
            .and_then(|i| i.key.sk.strip_prefix(tables::REVISION_PREFIX))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// A machine's head item. A machine marked DELETING whose executions have all ended is
    /// deleted here and answers as missing; one with executions still running is returned,
    /// unless `active` asks for a machine that may be changed or started
    /// (`StateMachineDeleting`).
    pub(crate) async fn machine_head(
        &self,
        name: &str,
        arn: &str,
        active: bool,
    ) -> Result<agentry_storage::Item> {
        let missing =
            || Error::StateMachineDoesNotExist(format!("State Machine Does Not Exist: '{arn}'"));
        let head = self
            .inner
            .store
            .get(MACHINES, &tables::machine_head(&self.scope.account, name))
            .await?
            .ok_or_else(missing)?;
        if str_attr(&head.attributes, "status") != "DELETING" {
            return Ok(head);
        }
        if self.finish_deleting(&head).await? {
            return Err(missing());
        }
        if active {
            return Err(Error::StateMachineDeleting(format!(
                "State machine is being deleted: {arn}"
            )));
        }
        Ok(head)
    }

    /// Deletes a machine marked DELETING once none of its executions runs: its head, versions
    /// and aliases in one go. Whether it is gone.
    async fn finish_deleting(&self, head: &agentry_storage::Item) -> Result<bool> {
        let name = head.key.sk.clone();
        let arn = self.scope.state_machine_arn(&name);
        let running = Query::index(
            tables::EXECUTIONS,
            tables::BY_MACHINE_STATUS,
            format!("{arn}#RUNNING"),
        )
        .limit(1);
        if !self.inner.store.query(&running).await?.items.is_empty() {
            return Ok(false);
        }
        let partition = tables::machine_partition(&self.scope.account, &name);
        let mut writes =
            vec![Write::delete(MACHINES, head.key.clone()).when(Condition::Version(head.version))];
        for prefix in [tables::VERSION_PREFIX, tables::ALIAS_PREFIX] {
            let q = Query::partition(MACHINES, partition.clone()).prefix(prefix);
            for item in self.inner.store.query_all(&q).await? {
                writes.push(Write::delete(MACHINES, item.key));
            }
        }
        // The head goes with the first chunk; versions and aliases left by a failure later are
        // removed by a delete that finds them again (a machine created anew starts clean).
        for (i, chunk) in writes.chunks(100).enumerate() {
            match self.inner.store.transact(chunk.to_vec()).await {
                Ok(_) => {}
                Err(e) if e.is_condition_failed() && i == 0 => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    /// DeleteStateMachine: the machine is marked DELETING and starts no more executions; it is
    /// deleted, with its versions and aliases, once its running executions have ended. Deleting
    /// a machine that does not exist succeeds, as on AWS.
    pub async fn delete_state_machine(&self, arn: &str) -> Result<()> {
        let name = match self.scope.machine(arn) {
            Ok((name, Qualifier::Latest)) => name,
            Ok((_, Qualifier::Version(_))) => {
                // AWS takes a version ARN here as DeleteStateMachineVersion.
                return self.delete_state_machine_version(arn).await;
            }
            Ok((_, Qualifier::Alias(_))) => {
                return Err(Error::Validation(format!(
                    "1 validation error detected: Value '{arn}' at 'stateMachineArn' failed to satisfy constraint: an alias arn cannot be deleted by DeleteStateMachine; use DeleteStateMachineAlias"
                )));
            }
            Err(Error::StateMachineDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        loop {
            let Some(head) = self
                .inner
                .store
                .get(MACHINES, &tables::machine_head(&self.scope.account, &name))
                .await?
            else {
                return Ok(());
            };
            let mut attrs = head.attributes.clone();
            attrs.insert("status".into(), json!("DELETING"));
            let write = Write::put(MACHINES, head.key.clone(), attrs)
                .when(Condition::Version(head.version));
            let version = match self.inner.store.transact(vec![write]).await {
                Ok(v) => v.first().copied().flatten().unwrap_or(head.version + 1),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            };
            let mut marked = head;
            marked.version = version;
            self.finish_deleting(&marked).await?;
            return Ok(());
        }
    }

    /// DeleteStateMachineVersion: executions of the version run on; a version an alias routes
    /// to cannot be deleted (`ConflictException`). Deleting a version that does not exist
    /// succeeds, as on AWS.
    pub async fn delete_state_machine_version(&self, arn: &str) -> Result<()> {
        let (name, version) = match self.scope.machine(arn) {
            Ok((name, Qualifier::Version(v))) => (name, v),
            Ok(_) => {
                return Err(Error::InvalidArn(format!(
                    "Invalid Arn: 'Resource type not valid in this context: {arn}'"
                )));
            }
            Err(Error::StateMachineDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let q = Query::partition(
            MACHINES,
            tables::machine_partition(&self.scope.account, &name),
        )
        .prefix(tables::ALIAS_PREFIX);
        let version_arn = format!("{}:{version}", self.scope.state_machine_arn(&name));
        for alias in self.inner.store.query_all(&q).await? {
            let routes = alias.attributes.get("routing").and_then(Value::as_array);
            if routes.is_some_and(|r| {
                r.iter()
                    .any(|r| r["stateMachineVersionArn"].as_str() == Some(&version_arn))
            }) {
                return Err(Error::Conflict(format!(
                    "Version to be deleted must not be referenced by an alias. Current list of aliases referencing this version: [{}:{}]",
                    self.scope.state_machine_arn(&name),
                    alias.key.sk.trim_start_matches(tables::ALIAS_PREFIX)
                )));
            }
        }
        self.inner
            .store
            .transact(vec![Write::delete(
                MACHINES,
                tables::machine_version(&self.scope.account, &name, version),
            )])
            .await?;
        Ok(())
    }

    /// UpdateStateMachine: stores the definition as a new revision; returns its revision id.
    pub async fn update_state_machine(&self, arn: &str, definition: &str) -> Result<String> {
        let (name, qualifier) = self.scope.machine(arn)?;
        if qualifier != Qualifier::Latest {
            return Err(Error::InvalidArn(format!(
                "{arn:?}: a version or alias cannot be updated"
            )));
        }
        validate(definition)?;
        loop {
            let head = self.machine_head(&name, arn, true).await?;
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
            let head = self.machine_head(&name, arn, true).await?;
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
        let (name, qualifier) = self.scope.machine(arn)?;
        let version = match qualifier {
            Qualifier::Latest => None,
            Qualifier::Version(v) => Some(v),
            Qualifier::Alias(_) => {
                return Err(Error::InvalidArn(format!(
                    "Invalid Arn: 'Resource type not valid in this context: {arn}' (DescribeStateMachineAlias describes aliases)"
                )));
            }
        };
        let head = self.machine_head(&name, arn, false).await?;
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
            status: match str_attr(h, "status").as_str() {
                "" => "ACTIVE".to_string(),
                s => s.to_string(),
            },
            version_description: None,
        };
        if let Some(v) = version {
            let item = self.version_item(&name, v, arn).await?;
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
            match self
                .describe_state_machine(&self.scope.state_machine_arn(&item.key.sk))
                .await
            {
                Ok(d) => out.push(d),
                // Its deletion finished just now.
                Err(Error::StateMachineDoesNotExist(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The revision a start names: `(name, revision, version, alias, type)`; a start through
    /// an alias runs one of its versions, drawn by weight.
    pub(crate) async fn resolve_machine(
        &self,
        arn: &str,
    ) -> Result<(String, u64, Option<u64>, Option<String>, String)> {
        let (name, qualifier) = self.scope.machine(arn)?;
        let (arn, alias) = match &qualifier {
            Qualifier::Alias(alias) => {
                self.machine_head(&name, arn, true).await?;
                (self.pick_alias_version(arn).await?, Some(alias.clone()))
            }
            _ => (arn.to_string(), None),
        };
        let version = match self.scope.machine(&arn)?.1 {
            Qualifier::Version(v) => Some(v),
            _ => None,
        };
        // One read of the head for the latest revision; a version's own item besides.
        let head = self.machine_head(&name, &arn, true).await?;
        let kind = str_attr(&head.attributes, "type");
        let revision = match version {
            None => u64_attr(&head.attributes, "revision"),
            Some(v) => {
                let item = self.version_item(&name, v, &arn).await?;
                u64_attr(&item.attributes, "revision")
            }
        };
        if revision == 0 {
            return Err(Error::Corrupt(format!("machine {name}: revision id")));
        }
        Ok((name, revision, version, alias, kind))
    }

    /// A published version's item; `arn` names it in the error when there is none.
    async fn version_item(&self, name: &str, v: u64, arn: &str) -> Result<agentry_storage::Item> {
        self.inner
            .store
            .get(
                MACHINES,
                &tables::machine_version(&self.scope.account, name, v),
            )
            .await?
            .ok_or_else(|| {
                Error::StateMachineDoesNotExist(format!("State Machine Does Not Exist: '{arn}'"))
            })
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
