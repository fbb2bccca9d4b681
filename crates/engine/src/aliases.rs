//! State machine aliases: a name that routes executions to one or two published versions by
//! weight (CreateStateMachineAlias, DescribeStateMachineAlias, ListStateMachineAliases,
//! UpdateStateMachineAlias, DeleteStateMachineAlias). StartExecution through an alias ARN
//! picks a version by weight; the execution records both.

use agentry_storage::{Condition, ItemStoreExt, Query, Write};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::tables::{self, MACHINES, Qualifier};
use crate::{Engine, now_ms, obj};

/// One route of an alias: a version ARN and its weight (0 to 100; the weights sum to 100).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub state_machine_version_arn: String,
    pub weight: u32,
}

/// DescribeStateMachineAlias's answer (dates in epoch milliseconds).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasDescription {
    pub state_machine_alias_arn: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub routing_configuration: Vec<Route>,
    pub creation_date: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_date: Option<i64>,
}

fn describe(arn: &str, name: &str, a: &serde_json::Map<String, Value>) -> Result<AliasDescription> {
    let routing = a
        .get("routing")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| Error::Corrupt(format!("alias {arn}: {e}")))?
        .unwrap_or_default();
    Ok(AliasDescription {
        state_machine_alias_arn: arn.to_string(),
        name: name.to_string(),
        description: a
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        routing_configuration: routing,
        creation_date: a
            .get("created_ms")
            .and_then(Value::as_i64)
            .unwrap_or_default(),
        update_date: a.get("updated_ms").and_then(Value::as_i64),
    })
}

impl Engine {
    /// Checks a routing configuration as AWS does: one or two distinct versions of the machine
    /// `name`, each published, weights 0 to 100 summing to 100.
    async fn check_routing(&self, name: &str, routing: &[Route]) -> Result<()> {
        if routing.is_empty() || routing.len() > 2 {
            return Err(Error::Validation(format!(
                "1 validation error detected: Value at 'routingConfiguration' failed to satisfy constraint: Member must have length between 1 and 2 (it has {})",
                routing.len()
            )));
        }
        if routing.iter().any(|r| r.weight > 100) {
            return Err(Error::Validation(
                "1 validation error detected: Value at 'routingConfiguration.member.weight' failed to satisfy constraint: Member must have value less than or equal to 100".into(),
            ));
        }
        let sum: u32 = routing.iter().map(|r| r.weight).sum();
        if sum != 100 {
            return Err(Error::Validation(format!(
                "Sum of routing configuration weights must equal 100; it is {sum}"
            )));
        }
        if routing.len() == 2
            && routing[0].state_machine_version_arn == routing[1].state_machine_version_arn
        {
            return Err(Error::Validation(
                "Routing configuration must contain distinct state machine version ARNs".into(),
            ));
        }
        for r in routing {
            let arn = &r.state_machine_version_arn;
            let version = match self.scope.machine(arn) {
                Ok((n, Qualifier::Version(v))) if n == name => v,
                Ok((_, Qualifier::Version(_))) => {
                    return Err(Error::Validation(format!(
                        "Routing configuration must contain state machine version ARNs of the alias's state machine; {arn} is of another"
                    )));
                }
                Ok(_) => {
                    return Err(Error::Validation(format!(
                        "Invalid Arn: '{arn}' is not a state machine version ARN"
                    )));
                }
                Err(Error::StateMachineDoesNotExist(_)) => {
                    return Err(Error::ResourceNotFound(format!(
                        "Resource not found: '{arn}'"
                    )));
                }
                Err(e) => return Err(e),
            };
            let exists = self
                .inner
                .store
                .get(
                    MACHINES,
                    &tables::machine_version(&self.scope.account, name, version),
                )
                .await?
                .is_some();
            if !exists {
                return Err(Error::ResourceNotFound(format!(
                    "Resource not found: '{arn}'"
                )));
            }
        }
        Ok(())
    }

    /// CreateStateMachineAlias on the machine the routing's versions belong to. Creating the
    /// same alias again with the same settings answers with it; with others,
    /// `ConflictException`.
    pub async fn create_state_machine_alias(
        &self,
        alias: &str,
        description: Option<&str>,
        routing: &[Route],
    ) -> Result<(String, i64)> {
        let alias = tables::check_alias_name(alias)?;
        let first = routing.first().ok_or_else(|| {
            Error::Validation("1 validation error detected: Value at 'routingConfiguration' failed to satisfy constraint: Member must have length greater than or equal to 1".into())
        })?;
        let name = match self.scope.machine(&first.state_machine_version_arn) {
            Ok((name, _)) => name,
            Err(Error::StateMachineDoesNotExist(arn)) => {
                return Err(Error::ResourceNotFound(format!(
                    "Resource not found: '{arn}'"
                )));
            }
            Err(e) => return Err(e),
        };
        let machine_arn = self.scope.state_machine_arn(&name);
        self.machine_head(&name, &machine_arn, true).await?;
        self.check_routing(&name, routing).await?;
        let arn = format!("{machine_arn}:{alias}");
        let now = now_ms();
        let item = obj(json!({
            "description": description, "routing": routing, "created_ms": now,
        }));
        let key = tables::machine_alias(&self.scope.account, &name, &alias);
        let put = Write::put(MACHINES, key.clone(), item).when(Condition::Absent);
        match self.inner.store.transact(vec![put]).await {
            Ok(_) => Ok((arn, now)),
            Err(e) if e.is_condition_failed() => {
                let existing = self.describe_state_machine_alias(&arn).await?;
                if existing.routing_configuration == routing
                    && existing.description.as_deref() == description
                {
                    Ok((arn, existing.creation_date))
                } else {
                    Err(Error::Conflict(format!(
                        "Failed to create alias because an alias with the same name and a different routing configuration already exists: {arn}"
                    )))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// DescribeStateMachineAlias.
    pub async fn describe_state_machine_alias(&self, arn: &str) -> Result<AliasDescription> {
        let (name, alias) = self.scope.alias(arn)?;
        let item = self
            .inner
            .store
            .get(
                MACHINES,
                &tables::machine_alias(&self.scope.account, &name, &alias),
            )
            .await?
            .ok_or_else(|| Error::ResourceNotFound(format!("Resource not found: '{arn}'")))?;
        describe(arn, &alias, &item.attributes)
    }

    /// ListStateMachineAliases of a machine, by name.
    pub async fn list_state_machine_aliases(
        &self,
        machine_arn: &str,
    ) -> Result<Vec<AliasDescription>> {
        let (name, _) = self.scope.machine(machine_arn)?;
        let arn = self.scope.state_machine_arn(&name);
        self.machine_head(&name, &arn, false).await?;
        let q = Query::partition(
            MACHINES,
            tables::machine_partition(&self.scope.account, &name),
        )
        .prefix(tables::ALIAS_PREFIX);
        let mut out = Vec::new();
        for item in self.inner.store.query_all(&q).await? {
            let alias = item.key.sk.trim_start_matches(tables::ALIAS_PREFIX);
            out.push(describe(
                &format!("{arn}:{alias}"),
                alias,
                &item.attributes,
            )?);
        }
        Ok(out)
    }

    /// UpdateStateMachineAlias: a new description or routing (or both); returns the update
    /// date.
    pub async fn update_state_machine_alias(
        &self,
        arn: &str,
        description: Option<&str>,
        routing: Option<&[Route]>,
    ) -> Result<i64> {
        let (name, alias) = self.scope.alias(arn)?;
        if description.is_none() && routing.is_none() {
            return Err(Error::Validation(
                "Either the description or the RoutingConfiguration must be specified".into(),
            ));
        }
        if let Some(routing) = routing {
            self.check_routing(&name, routing).await?;
        }
        let key = tables::machine_alias(&self.scope.account, &name, &alias);
        loop {
            let item =
                self.inner.store.get(MACHINES, &key).await?.ok_or_else(|| {
                    Error::ResourceNotFound(format!("Resource not found: '{arn}'"))
                })?;
            let mut attrs = item.attributes.clone();
            if let Some(d) = description {
                attrs.insert("description".into(), json!(d));
            }
            if let Some(r) = routing {
                attrs.insert("routing".into(), json!(r));
            }
            let now = now_ms();
            attrs.insert("updated_ms".into(), json!(now));
            let put =
                Write::put(MACHINES, key.clone(), attrs).when(Condition::Version(item.version));
            match self.inner.store.transact(vec![put]).await {
                Ok(_) => return Ok(now),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// DeleteStateMachineAlias: executions started through it run on; its versions stay.
    pub async fn delete_state_machine_alias(&self, arn: &str) -> Result<()> {
        let (name, alias) = self.scope.alias(arn)?;
        let key = tables::machine_alias(&self.scope.account, &name, &alias);
        let delete = Write::delete(MACHINES, key).when(Condition::Exists);
        match self.inner.store.transact(vec![delete]).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Err(Error::ResourceNotFound(format!(
                "Resource not found: '{arn}'"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The version a start through an alias runs: one of its routes, drawn by weight.
    pub(crate) async fn pick_alias_version(&self, arn: &str) -> Result<String> {
        let d = match self.describe_state_machine_alias(arn).await {
            Ok(d) => d,
            Err(Error::ResourceNotFound(_)) => {
                return Err(Error::StateMachineDoesNotExist(format!(
                    "State Machine Does Not Exist: '{arn}'"
                )));
            }
            Err(e) => return Err(e),
        };
        let draw = (uuid::Uuid::new_v4().as_u128() % 100) as u32;
        Ok(pick(&d.routing_configuration, draw).to_string())
    }
}

/// The route a draw in 0..100 falls on.
fn pick(routing: &[Route], draw: u32) -> &str {
    let mut acc = 0;
    for r in routing {
        acc += r.weight;
        if draw < acc {
            return &r.state_machine_version_arn;
        }
    }
    routing
        .last()
        .map_or("", |r| r.state_machine_version_arn.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_fall_on_routes_by_weight() {
        let routes = vec![
            Route {
                state_machine_version_arn: "a".into(),
                weight: 30,
            },
            Route {
                state_machine_version_arn: "b".into(),
                weight: 70,
            },
        ];
        assert_eq!(pick(&routes, 0), "a");
        assert_eq!(pick(&routes, 29), "a");
        assert_eq!(pick(&routes, 30), "b");
        assert_eq!(pick(&routes, 99), "b");
        let all_b = vec![
            Route {
                state_machine_version_arn: "a".into(),
                weight: 0,
            },
            Route {
                state_machine_version_arn: "b".into(),
                weight: 100,
            },
        ];
        assert!((0..100).all(|d| pick(&all_b, d) == "b"));
    }
}
