//! When to put a drifted object back, and when to stop: the first correction goes at once, the next
//! ones of the same object wait out the agent's one [`Backoff`]; a field corrected again and again
//! because another manager keeps setting it is contested — Tether stops fighting and reports who it
//! is fighting with, until Git changes the object.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::connection::Backoff;

/// Corrections of the same field within [`CONTEST_WINDOW`] after which it counts as contested.
pub const CONTEST_LIMIT: usize = 3;
/// A field corrected [`CONTEST_LIMIT`] times within this long is being fought over; one corrected
/// now and then (someone's occasional `kubectl edit`) is not.
pub const CONTEST_WINDOW: Duration = Duration::from_secs(600);

/// What to do about a drift now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Correct,
    /// Not before this instant.
    Wait(Instant),
    /// Another manager keeps setting this field: leave it.
    Contested {
        path: String,
        manager: String,
    },
}

/// One object's corrections.
#[derive(Debug, Default)]
pub struct Remedy {
    backoff: Backoff,
    not_before: Option<Instant>,
    /// Per field: when it was corrected, within the window.
    corrected: HashMap<String, Vec<Instant>>,
    contested: Option<(String, String)>,
}

impl Remedy {
    /// Whether a contention stopped the corrections (and with whom).
    pub fn contested(&self) -> Option<(&str, &str)> {
        self.contested
            .as_ref()
            .map(|(p, m)| (p.as_str(), m.as_str()))
    }

    /// Decides about drifted `paths` (with the manager now owning each) at `now`.
    pub fn decide(&mut self, paths: &[(String, Option<String>)], now: Instant) -> Decision {
        if let Some((path, manager)) = &self.contested {
            return Decision::Contested {
                path: path.clone(),
                manager: manager.clone(),
            };
        }
        for (path, owner) in paths {
            let times = self.corrected.entry(path.clone()).or_default();
            times.retain(|t| now.duration_since(*t) < CONTEST_WINDOW);
            if times.len() >= CONTEST_LIMIT {
                let manager = owner.clone().unwrap_or_else(|| "unknown".to_owned());
                self.contested = Some((path.clone(), manager.clone()));
                return Decision::Contested {
                    path: path.clone(),
                    manager,
                };
            }
        }
        match self.not_before {
            Some(t) if t > now => Decision::Wait(t),
            _ => Decision::Correct,
        }
    }

    /// A correction of `paths` was sent at `now`: the next one waits.
    pub fn corrected(&mut self, paths: &[(String, Option<String>)], now: Instant) {
        for (path, _) in paths {
            self.corrected.entry(path.clone()).or_default().push(now);
        }
        self.not_before = Some(now + self.backoff.failed(now));
    }

    /// The object was seen in sync at `now`.
    pub fn in_sync(&mut self, now: Instant) {
        self.backoff.connected(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(manager: &str) -> Vec<(String, Option<String>)> {
        vec![("/spec/replicas".to_owned(), Some(manager.to_owned()))]
    }

    #[test]
    fn first_correction_at_once_then_backoff_then_contested() {
        let mut r = Remedy::default();
        let start = Instant::now();
        let fight = replicas("hpa");
        assert_eq!(r.decide(&fight, start), Decision::Correct);
        r.corrected(&fight, start);
        let Decision::Wait(until) = r.decide(&fight, start) else {
            panic!("the second correction waits");
        };
        assert!(until > start);
        let mut now = until;
        for _ in 1..CONTEST_LIMIT {
            assert_eq!(r.decide(&fight, now), Decision::Correct);
            r.corrected(&fight, now);
            now += Duration::from_secs(120);
        }
        assert_eq!(
            r.decide(&fight, now),
            Decision::Contested {
                path: "/spec/replicas".into(),
                manager: "hpa".into()
            }
        );
        assert_eq!(r.contested(), Some(("/spec/replicas", "hpa")));
    }

    #[test]
    fn occasional_edits_are_not_a_contention() {
        let mut r = Remedy::default();
        let mut now = Instant::now();
        let edit = replicas("kubectl-edit");
        for _ in 0..10 {
            assert_eq!(r.decide(&edit, now), Decision::Correct);
            r.corrected(&edit, now);
            now += CONTEST_WINDOW / 2;
        }
    }
}
