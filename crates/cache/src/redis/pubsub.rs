//! Subscriptions on Redis: one dedicated RESP3 connection per cache, opened on the first
//! subscribe, carries every channel and pattern this process listens to. Its push messages
//! are fanned out to local subscribers through broadcast channels; the server sees one
//! subscriber per channel however many local ones there are. The connection manager
//! reconnects and resubscribes on its own; messages published while it is away are lost, as
//! at-most-once delivery allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::broadcast;

use super::{TIMEOUT, map_error};
use crate::pubsub::{Message, Subscription, glob_escape};
use crate::{Error, Result};

/// Messages a local subscriber may fall behind before it loses the oldest.
const CHANNEL_CAPACITY: usize = 1024;

pub(super) struct Hub {
    client: redis::Client,
    prefix: String,
    routes: Arc<Routes>,
    // Held across the SUBSCRIBE/UNSUBSCRIBE round trip, so the two never interleave for a
    // channel: the server's subscriptions always match the routes.
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
}

/// Local subscribers by the full (prefixed) channel or pattern name.
#[derive(Default)]
struct Routes {
    exact: Mutex<HashMap<String, broadcast::Sender<Message>>>,
    patterns: Mutex<HashMap<String, broadcast::Sender<Message>>>,
}

impl Routes {
    fn map(&self, pattern: bool) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Message>>> {
        let map = if pattern { &self.patterns } else { &self.exact };
        map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deliver one push from the server. Runs on the connection's reader: quick, never blocks.
    fn deliver(&self, prefix: &str, push: PushInfo) {
        let strip = |v: &Value| -> Option<String> {
            let s = match v {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            Some(s)
        };
        let payload = |v: &Value| match v {
            Value::BulkString(b) => Bytes::copy_from_slice(b),
            Value::SimpleString(s) => Bytes::copy_from_slice(s.as_bytes()),
            _ => Bytes::new(),
        };
        let (route, pattern, message) = match (push.kind, push.data.as_slice()) {
            (PushKind::Message, [channel, data]) => {
                let Some(full) = strip(channel) else { return };
                let channel = full.strip_prefix(prefix).unwrap_or(&full).to_owned();
                (
                    full,
                    false,
                    Message {
                        channel,
                        pattern: None,
                        payload: payload(data),
                    },
                )
            }
            (PushKind::PMessage, [pattern, channel, data]) => {
                let (Some(full_pattern), Some(full)) = (strip(pattern), strip(channel)) else {
                    return;
                };
                let escaped = glob_escape(prefix);
                let pattern = full_pattern
                    .strip_prefix(&escaped)
                    .unwrap_or(&full_pattern)
                    .to_owned();
                let channel = full.strip_prefix(prefix).unwrap_or(&full).to_owned();
                (
                    full_pattern,
                    true,
                    Message {
                        channel,
                        pattern: Some(pattern),
                        payload: payload(data),
                    },
                )
            }
            _ => return,
        };
        if let Some(tx) = self.map(pattern).get(&route) {
            let _ = tx.send(message);
        }
    }
}

impl Hub {
    pub(super) fn new(client: redis::Client, prefix: String) -> Self {
        Hub {
            client,
            prefix,
            routes: Arc::default(),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<ConnectionManager> {
        let info = self.client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| Error::Backend(format!("redis subscription connection: {e}")))?;
        let routes = Arc::downgrade(&self.routes);
        let prefix = self.prefix.clone();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                let Some(routes) = routes.upgrade() else {
                    return Err(redis::aio::SendError);
                };
                routes.deliver(&prefix, push);
                Ok(())
            });
        let unavailable = |e| Error::Unavailable(format!("redis subscription connection: {e}"));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        // Named so `CLIENT LIST` shows whose subscriptions it carries.
        let name: String = format!("agentry-sub:{}", self.prefix)
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        conn.send_packed_command(redis::cmd("CLIENT").arg("SETNAME").arg(name))
            .await
            .map_err(unavailable)?;
        Ok(conn)
    }

    /// Subscribe to a channel (or pattern) given without the prefix.
    pub(super) async fn subscribe(
        self: &Arc<Self>,
        name: &str,
        pattern: bool,
    ) -> Result<Subscription> {
        let full = if pattern {
            format!("{}{name}", glob_escape(&self.prefix))
        } else {
            format!("{}{name}", self.prefix)
        };
        let mut conn = self.conn.lock().await;
        if conn.is_none() {
            *conn = Some(self.connect().await?);
        }
        let conn = conn.as_mut().expect("connected above");
        let existing = self.routes.map(pattern).get(&full).map(|tx| tx.subscribe());
        let rx = match existing {
            Some(rx) => rx,
            None => {
                let (tx, rx) = broadcast::channel(CHANNEL_CAPACITY);
                self.routes.map(pattern).insert(full.clone(), tx);
                let subscribed = if pattern {
                    conn.psubscribe(&full).await
                } else {
                    conn.subscribe(&full).await
                };
                if let Err(e) = subscribed {
                    self.routes.map(pattern).remove(&full);
                    return Err(map_error(e, name, ""));
                }
                rx
            }
        };
        let guard = Unsubscribe {
            hub: Arc::downgrade(self),
            full,
            pattern,
        };
        Ok(Subscription::new(rx, Some(Box::new(guard))))
    }

    /// Drop the server subscription if no local subscriber is left.
    async fn release(&self, full: &str, pattern: bool) {
        let mut conn = self.conn.lock().await;
        let idle = self
            .routes
            .map(pattern)
            .get(full)
            .is_some_and(|tx| tx.receiver_count() == 0);
        if !idle {
            return;
        }
        self.routes.map(pattern).remove(full);
        if let Some(conn) = conn.as_mut() {
            // Failing to unsubscribe only costs messages nobody reads; the routes are gone.
            let _ = if pattern {
                conn.punsubscribe(full).await
            } else {
                conn.unsubscribe(full).await
            };
        }
    }
}

/// Dropped with a [`Subscription`] (after its receiver): releases the server subscription.
struct Unsubscribe {
    hub: Weak<Hub>,
    full: String,
    pattern: bool,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let (Some(hub), Ok(runtime)) = (self.hub.upgrade(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (full, pattern) = (std::mem::take(&mut self.full), self.pattern);
        runtime.spawn(async move { hub.release(&full, pattern).await });
    }
}
