//! Tables and keys, and the plain reads and writes of agents, profiles and sessions.
//!
//! - `agentry_agents`: partition `agents#TENANT` holds each agent's head (sort key: its name;
//!   the latest version and its configuration); partition `agent#TENANT#NAME` its versions
//!   (`v#00000001`...).
//! - `agentry_users`: partition `users#TENANT`, sort key the user: the profile.
//! - `agentry_sessions`: partition `session#ID` holds the session (sort key `session`) and its
//!   turns (`turn#00000001`...). Index `by-owner` lists a user's sessions newest first; the
//!   sparse index `open-turns` finds the turns still queued or running.

use agentry_storage::{Attributes, Condition, Item, ItemStoreExt, Key, Query, TableSpec, Write};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::model::{Agent, AgentConfig, Session, Turn, check_id};
use crate::{Error, Result, Sessions};

pub const AGENTS: &str = "agentry_agents";
pub const USERS: &str = "agentry_users";
pub const SESSIONS: &str = "agentry_sessions";
pub const BY_OWNER: &str = "by-owner";
pub const OPEN_TURNS: &str = "open-turns";

pub fn specs() -> Vec<TableSpec> {
    vec![
        TableSpec::new(AGENTS),
        TableSpec::new(USERS),
        TableSpec::new(SESSIONS)
            .with_index(BY_OWNER, "owner", "listed")
            .with_index(OPEN_TURNS, "open", "open_order"),
    ]
}

pub fn session_key(id: &str) -> Key {
    Key::new(format!("session#{id}"), "session")
}

pub fn turn_key(session: &str, n: u64) -> Key {
    Key::new(format!("session#{session}"), format!("turn#{n:08}"))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `value` as an item's attributes, under `field`, with `extra` attributes beside it.
pub fn attrs<T: Serialize>(field: &str, value: &T, extra: Value) -> Result<Attributes> {
    let mut a = match extra {
        Value::Object(m) => m,
        _ => Attributes::new(),
    };
    a.insert(
        field.into(),
        serde_json::to_value(value).map_err(|e| Error::Corrupt(e.to_string()))?,
    );
    Ok(a)
}

pub fn from_item<T: DeserializeOwned>(item: &Item, field: &str) -> Result<T> {
    let v = item
        .attributes
        .get(field)
        .cloned()
        .ok_or_else(|| Error::Corrupt(format!("{:?} has no {field}", item.key)))?;
    serde_json::from_value(v).map_err(|e| Error::Corrupt(format!("{:?}: {e}", item.key)))
}

impl Sessions {
    /// Saves an agent. The first save is version 1; a save with another configuration makes
    /// the next version; a save with the same configuration answers the current version.
    pub async fn put_agent(&self, tenant: &str, name: &str, config: AgentConfig) -> Result<Agent> {
        check_id("tenant", tenant)?;
        check_id("agent", name)?;
        if config.state_machine.trim().is_empty() {
            return Err(Error::invalid(
                "state_machine",
                "an agent names the state machine its turns run",
            ));
        }
        let head_key = Key::new(format!("agents#{tenant}"), name);
        loop {
            let head = self.store.get(AGENTS, &head_key).await?;
            let (version, condition) = match &head {
                Some(item) => {
                    let current: Agent = from_item(item, "agent")?;
                    if current.config == config {
                        return Ok(current);
                    }
                    (current.version + 1, Condition::Version(item.version))
                }
                None => (1, Condition::Absent),
            };
            let agent = Agent {
                tenant: tenant.into(),
                name: name.into(),
                version,
                config: config.clone(),
                created_ms: now_ms(),
            };
            let writes = vec![
                Write::put(AGENTS, head_key.clone(), attrs("agent", &agent, json!({}))?)
                    .when(condition),
                Write::put(
                    AGENTS,
                    Key::new(format!("agent#{tenant}#{name}"), format!("v#{version:08}")),
                    attrs("agent", &agent, json!({}))?,
                ),
            ];
            match self.store.transact(writes).await {
                Ok(_) => return Ok(agent),
                Err(e) if e.is_condition_failed() => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An agent, at its latest version or at `version`.
    pub async fn agent(&self, tenant: &str, name: &str, version: Option<u64>) -> Result<Agent> {
        check_id("tenant", tenant)?;
        check_id("agent", name)?;
        let key = match version {
            None => Key::new(format!("agents#{tenant}"), name),
            Some(v) => Key::new(format!("agent#{tenant}#{name}"), format!("v#{v:08}")),
        };
        let item = self.store.get(AGENTS, &key).await?.ok_or_else(|| {
            Error::NotFound(match version {
                Some(v) => format!("agent {name} version {v}"),
                None => format!("agent {name}"),
            })
        })?;
        from_item(&item, "agent")
    }

    /// The tenant's agents (latest versions), by name.
    pub async fn list_agents(&self, tenant: &str) -> Result<Vec<Agent>> {
        check_id("tenant", tenant)?;
        let items = self
            .store
            .query_all(&Query::partition(AGENTS, format!("agents#{tenant}")))
            .await?;
        items.iter().map(|i| from_item(i, "agent")).collect()
    }

    /// Sets a user's profile (industry, preferences: any JSON object).
    pub async fn put_profile(&self, tenant: &str, user: &str, profile: Value) -> Result<()> {
        check_id("tenant", tenant)?;
        check_id("user", user)?;
        if !profile.is_object() {
            return Err(Error::invalid("profile", "a profile is a JSON object"));
        }
        self.store
            .put(
                USERS,
                Key::new(format!("users#{tenant}"), user),
                attrs("profile", &profile, json!({"updated_ms": now_ms()}))?,
            )
            .await?;
        Ok(())
    }

    /// A user's profile (`{}` when none was set).
    pub async fn profile(&self, tenant: &str, user: &str) -> Result<Value> {
        check_id("tenant", tenant)?;
        check_id("user", user)?;
        match self
            .store
            .get(USERS, &Key::new(format!("users#{tenant}"), user))
            .await?
        {
            Some(item) => from_item(&item, "profile"),
            None => Ok(json!({})),
        }
    }

    /// Starts a session of `user` with the latest version of `agent`.
    pub async fn create_session(
        &self,
        tenant: &str,
        user: &str,
        agent: &str,
        title: Option<&str>,
    ) -> Result<Session> {
        check_id("user", user)?;
        let agent = self.agent(tenant, agent, None).await?;
        let now = now_ms();
        let session = Session {
            id: uuid::Uuid::new_v4().to_string(),
            tenant: tenant.into(),
            user: user.into(),
            agent: agent.name,
            agent_version: agent.version,
            title: title.map(str::to_string),
            created_ms: now,
            updated_ms: now,
            turns: 0,
        };
        self.store
            .put_if_absent(SESSIONS, session_key(&session.id), session_attrs(&session)?)
            .await?;
        Ok(session)
    }

    /// A session of `user`, with the store item's version. Another user's or tenant's session
    /// is [`Error::NotFound`], as one that does not exist.
    pub(crate) async fn session_item(
        &self,
        tenant: &str,
        user: &str,
        id: &str,
    ) -> Result<(Session, u64)> {
        let missing = || Error::NotFound(format!("session {id}"));
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(missing());
        }
        let item = self
            .store
            .get(SESSIONS, &session_key(id))
            .await?
            .ok_or_else(missing)?;
        let session: Session = from_item(&item, "session")?;
        if session.tenant != tenant || session.user != user {
            return Err(missing());
        }
        Ok((session, item.version))
    }

    /// A session of `user` (see [`Sessions::session_item`] for whose are visible).
    pub async fn session(&self, tenant: &str, user: &str, id: &str) -> Result<Session> {
        Ok(self.session_item(tenant, user, id).await?.0)
    }

    /// A user's sessions, newest first: one page of at most `limit` and the cursor of the next.
    pub async fn list_sessions(
        &self,
        tenant: &str,
        user: &str,
        limit: u32,
        cursor: Option<String>,
    ) -> Result<(Vec<Session>, Option<String>)> {
        check_id("tenant", tenant)?;
        check_id("user", user)?;
        let page = self
            .store
            .query(
                &Query::index(SESSIONS, BY_OWNER, format!("{tenant}#{user}"))
                    .descending()
                    .limit(limit.clamp(1, 1000))
                    .after(cursor),
            )
            .await
            .map_err(|e| match e {
                agentry_storage::Error::InvalidInput { message, .. } => {
                    Error::invalid("cursor", message)
                }
                e => e.into(),
            })?;
        let sessions = page
            .items
            .iter()
            .map(|i| from_item(i, "session"))
            .collect::<Result<_>>()?;
        Ok((sessions, page.cursor))
    }

    /// A session's turns, oldest first, as stored (see [`Sessions::refresh`] to bring open
    /// ones up to date first).
    pub async fn turns(&self, tenant: &str, user: &str, id: &str) -> Result<Vec<Turn>> {
        self.session_item(tenant, user, id).await?;
        Ok(self
            .turn_items(id)
            .await?
            .into_iter()
            .map(|t| t.turn)
            .collect())
    }

    pub(crate) async fn turn_items(&self, id: &str) -> Result<Vec<TurnItem>> {
        let items = self
            .store
            .query_all(&Query::partition(SESSIONS, format!("session#{id}")).prefix("turn#"))
            .await?;
        items.iter().map(TurnItem::of).collect()
    }

    /// Writes a turn over the version read; `false` when someone else wrote it first.
    pub(crate) async fn save_turn(&self, t: &TurnItem) -> Result<bool> {
        match self
            .store
            .put_if_version(
                SESSIONS,
                turn_key(&t.turn.session, t.turn.n),
                t.attributes()?,
                t.version,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// A stored turn with what is kept beside it: whose it is, the account its execution runs in,
/// and the input it was (or will be) started with.
#[derive(Clone, Debug)]
pub(crate) struct TurnItem {
    pub turn: Turn,
    pub version: u64,
    pub tenant: String,
    pub user: String,
    pub account: String,
    pub state_machine: String,
    pub input: Value,
}

impl TurnItem {
    fn of(item: &Item) -> Result<Self> {
        let text = |k: &str| {
            item.attributes
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(TurnItem {
            turn: from_item(item, "turn")?,
            version: item.version,
            tenant: text("tenant"),
            user: text("user"),
            account: text("account"),
            state_machine: text("state_machine"),
            input: item.attributes.get("input").cloned().unwrap_or(Value::Null),
        })
    }

    pub fn attributes(&self) -> Result<Attributes> {
        let t = &self.turn;
        let mut extra = json!({
            "tenant": self.tenant, "user": self.user, "account": self.account,
            "state_machine": self.state_machine, "input": self.input,
        });
        if t.status.is_open() {
            extra["open"] = json!("open");
            extra["open_order"] = json!(format!(
                "{:016}#{}#{:08}",
                t.received_ms.max(0),
                t.session,
                t.n
            ));
        }
        attrs("turn", t, extra)
    }
}

pub fn session_attrs(s: &Session) -> Result<Attributes> {
    attrs(
        "session",
        s,
        json!({
            "owner": format!("{}#{}", s.tenant, s.user),
            "listed": format!("{:016}#{}", s.created_ms.max(0), s.id),
        }),
    )
}

impl Sessions {
    /// The agent (at the session's version) whose turn `execution_arn` runs, when it is a
    /// turn's execution: its name is `SESSION-N`, and the turn it names was started in the
    /// execution's account on the execution's state machine. `None` for any other execution.
    pub async fn agent_of_execution(&self, execution_arn: &str) -> Result<Option<Agent>> {
        let parts: Vec<&str> = execution_arn.split(':').collect();
        let [_, _, _, _, account, "execution", machine, name] = parts.as_slice() else {
            return Ok(None);
        };
        let Some((session, n)) = name.rsplit_once('-') else {
            return Ok(None);
        };
        let (Ok(_), Ok(n)) = (uuid::Uuid::parse_str(session), n.parse::<u64>()) else {
            return Ok(None);
        };
        let Some(item) = self.store.get(SESSIONS, &turn_key(session, n)).await? else {
            return Ok(None);
        };
        let turn = TurnItem::of(&item)?;
        // The machine a turn names: a name, or an ARN (perhaps of a version or alias).
        let named = match turn.state_machine.split_once(":stateMachine:") {
            Some((_, rest)) => rest.split(':').next().unwrap_or(rest),
            None => turn.state_machine.as_str(),
        };
        if turn.account != *account || named != *machine {
            return Ok(None);
        }
        let Some(item) = self.store.get(SESSIONS, &session_key(session)).await? else {
            return Ok(None);
        };
        let s: Session = from_item(&item, "session")?;
        Ok(Some(
            self.agent(&s.tenant, &s.agent, Some(s.agent_version))
                .await?,
        ))
    }
}
