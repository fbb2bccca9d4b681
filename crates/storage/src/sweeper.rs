//! Background removal of expired items: DynamoDB deletes expired items by itself; the other
//! backends need someone to call [`ItemStore::purge_expired`], and this task is that someone.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::ItemStore;

/// Items purged per call; the sweeper calls again while a call fills its batch.
const BATCH: u32 = 500;

/// Purges the expired items of `tables` every `every`, until the task is aborted. Errors are
/// logged and the sweep tried again at the next tick: expired items are invisible meanwhile.
pub fn spawn_ttl_sweeper(
    store: Arc<dyn ItemStore>,
    tables: Vec<String>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for table in &tables {
                loop {
                    match store.purge_expired(table, BATCH).await {
                        Ok(n) if n == u64::from(BATCH) => continue,
                        Ok(n) => {
                            if n > 0 {
                                tracing::debug!(table = %table, purged = n, "ttl sweeper: expired items removed");
                            }
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(table = %table, error = %e, "ttl sweeper: purge failed");
                            break;
                        }
                    }
                }
            }
        }
    })
}
