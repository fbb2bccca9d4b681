//! What subscribers receive, and Redis's channel patterns. Both backends fan messages out to
//! local subscribers through tokio broadcast channels, so a subscription looks the same
//! whichever backend produced it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

/// A message received on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The channel it was published on.
    pub channel: String,
    /// The pattern that matched it, for pattern subscriptions.
    pub pattern: Option<String>,
    pub payload: Bytes,
}

/// A live subscription: a stream of [`Message`]s. Dropping it unsubscribes.
///
/// A subscriber that falls more than the backend's buffer behind loses the oldest messages
/// it has not read yet; [`Subscription::lagged`] says how many were lost so far.
pub struct Subscription {
    stream: BroadcastStream<Message>,
    lagged: u64,
    // Unsubscribes from the server when the last local subscriber of a channel goes away.
    _guard: Option<Box<dyn Send + Sync>>,
}

impl Subscription {
    pub(crate) fn new(
        rx: broadcast::Receiver<Message>,
        guard: Option<Box<dyn Send + Sync>>,
    ) -> Self {
        Subscription {
            stream: BroadcastStream::new(rx),
            lagged: 0,
            _guard: guard,
        }
    }

    /// The next message, or `None` once the subscription can deliver no more (the cache was
    /// dropped).
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// How many messages this subscriber has lost by falling behind.
    pub fn lagged(&self) -> u64 {
        self.lagged
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            match Pin::new(&mut self.stream).poll_next(cx) {
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n)))) => self.lagged += n,
                Poll::Ready(Some(Ok(message))) => return Poll::Ready(Some(message)),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("lagged", &self.lagged)
            .finish_non_exhaustive()
    }
}

/// Whether `text` matches the Redis glob `pattern`: `*` any run, `?` one character,
/// `[abc]`, `[^a]`, `[a-z]` classes, `\x` a literal x.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob(&p, &t)
}

fn glob(p: &[char], t: &[char]) -> bool {
    // Iterative matching with backtracking to the last `*`, linear in practice.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class(p, pi, t[ti])
                        && matched
                    {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == t[ti] {
                        pi += 2;
                        ti += 1;
                        continue;
                    }
                }
                c => {
                    if c == t[ti] {
                        pi += 1;
                        ti += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; returns whether it matched
/// and the index after the class. An unterminated class runs to the end, as in Redis.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == '^';
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < p.len() && p[i] != ']' {
        if p[i] == '\\' && i + 1 < p.len() {
            matched |= p[i + 1] == c;
            i += 2;
        } else if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            let (lo, hi) = if p[i] <= p[i + 2] {
                (p[i], p[i + 2])
            } else {
                (p[i + 2], p[i])
            };
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    let next = if i < p.len() { i + 1 } else { i };
    Some((matched != negate, next))
}

/// `text` with the glob's special characters escaped, so it matches only itself.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_redis_does() {
        assert!(glob_match("h?llo", "hello"));
        assert!(glob_match("h*llo", "heeeello"));
        assert!(glob_match("h*llo", "hllo"));
        assert!(glob_match("h[ae]llo", "hallo"));
        assert!(!glob_match("h[ae]llo", "hillo"));
        assert!(glob_match("h[^e]llo", "hallo"));
        assert!(!glob_match("h[^e]llo", "hello"));
        assert!(glob_match("h[a-b]llo", "hbllo"));
        assert!(!glob_match("h[a-b]llo", "hcllo"));
        assert!(glob_match("exec.*.events", "exec.42.events"));
        assert!(!glob_match("exec.*.events", "exec.42.log"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a\\*b", "axb"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("?", ""));
        assert!(glob_match("*a*b*c", "xxaxxbxxc"));
        assert!(glob_match(&glob_escape("p[1]*"), "p[1]*"));
        assert!(!glob_match(&format!("{}*", glob_escape("p[1]")), "p1x"));
    }
}
