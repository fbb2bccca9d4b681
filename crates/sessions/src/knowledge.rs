//! A knowledge base held in memory: entries matched by the words they share with the query.
//! For tests and single-process use; a durable full-text one plugs in through [`Knowledge`].

use std::collections::HashSet;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::Result;
use crate::turns::{Knowledge, KnowledgeHit};

/// Entries per tenant and user, searched by shared words (case-insensitive, words of three
/// letters or more), scored by the share of the query's words an entry holds.
#[derive(Default)]
pub struct MemoryKnowledge {
    entries: Mutex<Vec<(String, String, KnowledgeHit)>>,
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

#[async_trait]
impl Knowledge for MemoryKnowledge {
    async fn search(
        &self,
        tenant: &str,
        user: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<KnowledgeHit>> {
        let q = words(query);
        if q.is_empty() {
            return Ok(Vec::new());
        }
        let entries = self.entries.lock().expect("knowledge lock");
        let mut hits: Vec<KnowledgeHit> = entries
            .iter()
            .filter(|(t, u, _)| t == tenant && u == user)
            .filter_map(|(_, _, h)| {
                let shared = words(&h.text).intersection(&q).count();
                (shared > 0).then(|| KnowledgeHit {
                    score: shared as f64 / q.len() as f64,
                    ..h.clone()
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.at_ms.cmp(&a.at_ms)));
        hits.truncate(limit);
        Ok(hits)
    }

    async fn add(&self, tenant: &str, user: &str, hit: KnowledgeHit) -> Result<()> {
        self.entries.lock().expect("knowledge lock").push((
            tenant.to_string(),
            user.to_string(),
            hit,
        ));
        Ok(())
    }
}
