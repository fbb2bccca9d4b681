//! A sorted set: members by name for scores, and (score, member) in order for ranges.
//! Ranks are found by walking the ordered index, O(rank); the sets the platform keeps
//! (priorities, tool-usage leaderboards) are small enough that a skip list would not pay.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use crate::{End, Scored, ZRange};

/// A score with a total order; NaN never gets in and -0 is stored as 0, as in Redis.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Score {
    fn new(score: f64) -> Self {
        Score(if score == 0.0 { 0.0 } else { score })
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Bytes of bookkeeping per member, on top of the member's name (held twice).
const MEMBER_OVERHEAD: usize = 48;

#[derive(Debug, Default)]
pub(crate) struct ZSet {
    scores: HashMap<String, f64>,
    order: BTreeSet<(Score, String)>,
    bytes: usize,
}

impl ZSet {
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes a new member of this name would add.
    pub(crate) fn member_cost(member: &str) -> usize {
        MEMBER_OVERHEAD + 2 * member.len()
    }

    pub(crate) fn score(&self, member: &str) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Set a member's score; returns whether the member is new.
    pub(crate) fn insert(&mut self, member: &str, score: f64) -> bool {
        let score = Score::new(score).0;
        match self.scores.get_mut(member) {
            Some(old) => {
                if *old != score {
                    self.order.remove(&(Score(*old), member.to_owned()));
                    self.order.insert((Score(score), member.to_owned()));
                    *old = score;
                }
                false
            }
            None => {
                self.scores.insert(member.to_owned(), score);
                self.order.insert((Score(score), member.to_owned()));
                self.bytes += Self::member_cost(member);
                true
            }
        }
    }

    pub(crate) fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(Score(score), member.to_owned()));
                self.bytes -= Self::member_cost(member);
                true
            }
            None => false,
        }
    }

    pub(crate) fn pop(&mut self, end: End, count: usize) -> Vec<Scored> {
        let mut out = Vec::with_capacity(count.min(self.len()));
        while out.len() < count {
            let popped = match end {
                End::Min => self.order.pop_first(),
                End::Max => self.order.pop_last(),
            };
            let Some((Score(score), member)) = popped else {
                break;
            };
            self.scores.remove(&member);
            self.bytes -= Self::member_cost(&member);
            out.push((member, score));
        }
        out
    }

    pub(crate) fn range(&self, range: ZRange) -> Vec<Scored> {
        let pair = |(s, m): &(Score, String)| (m.clone(), s.0);
        match range {
            ZRange::Rank { start, stop, rev } => {
                let n = self.len() as i64;
                let start = if start < 0 { (start + n).max(0) } else { start };
                let stop = if stop < 0 { stop + n } else { stop.min(n - 1) };
                if start > stop || start >= n {
                    return Vec::new();
                }
                let (skip, take) = (start as usize, (stop - start + 1) as usize);
                if rev {
                    self.order
                        .iter()
                        .rev()
                        .skip(skip)
                        .take(take)
                        .map(pair)
                        .collect()
                } else {
                    self.order.iter().skip(skip).take(take).map(pair).collect()
                }
            }
            ZRange::Score {
                min,
                max,
                rev,
                limit,
            } => {
                let above_min = |s: f64| match min {
                    Bound::Included(m) => s >= m,
                    Bound::Excluded(m) => s > m,
                    Bound::Unbounded => true,
                };
                let below_max = |s: f64| match max {
                    Bound::Included(m) => s <= m,
                    Bound::Excluded(m) => s < m,
                    Bound::Unbounded => true,
                };
                let (offset, count) = limit.unwrap_or((0, usize::MAX));
                if rev {
                    self.order
                        .iter()
                        .rev()
                        .skip_while(|(s, _)| !below_max(s.0))
                        .take_while(|(s, _)| above_min(s.0))
                        .skip(offset)
                        .take(count)
                        .map(pair)
                        .collect()
                } else {
                    let from = match min {
                        Bound::Included(m) | Bound::Excluded(m) => {
                            Bound::Included((Score::new(m), String::new()))
                        }
                        Bound::Unbounded => Bound::Unbounded,
                    };
                    self.order
                        .range((from, Bound::Unbounded))
                        .skip_while(|(s, _)| !above_min(s.0))
                        .take_while(|(s, _)| below_max(s.0))
                        .skip(offset)
                        .take(count)
                        .map(pair)
                        .collect()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(members: &[(&str, f64)]) -> ZSet {
        let mut z = ZSet::default();
        for (m, s) in members {
            z.insert(m, *s);
        }
        z
    }

    fn names(v: Vec<Scored>) -> Vec<String> {
        v.into_iter().map(|(m, _)| m).collect()
    }

    #[test]
    fn ranks_follow_redis_index_rules() {
        let z = set(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
        assert_eq!(names(z.range(ZRange::ranks(0, -1))), ["a", "b", "c"]);
        assert_eq!(names(z.range(ZRange::ranks(-2, -1))), ["b", "c"]);
        assert_eq!(names(z.range(ZRange::ranks(1, 100))), ["b", "c"]);
        assert_eq!(names(z.range(ZRange::ranks(-100, 0))), ["a"]);
        assert!(z.range(ZRange::ranks(2, 1)).is_empty());
        assert!(z.range(ZRange::ranks(3, 5)).is_empty());
        assert_eq!(names(z.range(ZRange::ranks(0, 0).rev())), ["c"]);
    }

    #[test]
    fn score_bounds_and_limits() {
        let z = set(&[("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 3.0)]);
        let r = ZRange::Score {
            min: Bound::Excluded(1.0),
            max: Bound::Included(3.0),
            rev: false,
            limit: None,
        };
        assert_eq!(names(z.range(r)), ["b", "c", "d"]);
        assert_eq!(names(z.range(r.rev())), ["d", "c", "b"]);
        assert_eq!(names(z.range(r.limit(1, 1))), ["c"]);
        let r = ZRange::Score {
            min: Bound::Unbounded,
            max: Bound::Excluded(2.0),
            rev: true,
            limit: None,
        };
        assert_eq!(names(z.range(r)), ["a"]);
    }

    #[test]
    fn negative_zero_is_zero() {
        let mut z = set(&[("b", 0.0)]);
        z.insert("a", -0.0);
        assert_eq!(names(z.range(ZRange::all())), ["a", "b"]);
        assert_eq!(z.score("a"), Some(0.0));
    }
}
