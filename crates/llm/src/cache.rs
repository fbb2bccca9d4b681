//! The response cache: a request identical to an earlier one (same provider, model, system
//! prompt, messages, parameters and tools) is answered with the earlier response, for the
//! configured TTL, on any [`agentry_cache::Cache`] backend (memory by default, Redis to share
//! it between nodes).

use std::sync::Arc;
use std::time::Duration;

use agentry_cache::{Cache, SetOptions};
use serde_json::json;

use crate::hash;
use crate::recorded::normalize;
use crate::types::{ConverseRequest, ConverseResponse};

#[derive(Clone)]
pub struct ResponseCache {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

impl ResponseCache {
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> Self {
        ResponseCache { cache, ttl }
    }

    /// The key of `request` sent to `provider`.
    pub fn key(provider: &str, request: &ConverseRequest) -> String {
        format!(
            "llm:response:{}",
            hash::digest(&json!({"provider": provider, "request": normalize(request)}))
        )
    }

    /// The cached response, if any. A cache that fails is treated as a miss (and logged): the
    /// call goes to the provider instead.
    pub async fn get(&self, key: &str) -> Option<ConverseResponse> {
        match self.cache.get(key).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "llm response cache read failed");
                None
            }
        }
    }

    pub async fn put(&self, key: &str, response: &ConverseResponse) {
        let bytes = serde_json::to_vec(response).expect("responses serialize");
        if let Err(e) = self.cache.set(key, &bytes, SetOptions::ttl(self.ttl)).await {
            tracing::warn!(error = %e, "llm response cache write failed");
        }
    }
}
