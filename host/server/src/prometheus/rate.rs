//! A token bucket per user: `burst` requests at once, refilled at `queries_per_minute`. Kept in
//! memory per server replica (a person's requests spread over replicas get each replica's rate).

use std::collections::HashMap;
use std::sync::Mutex;
use tether_config::server::PrometheusRate;
use tokio::time::Instant;

/// Users tracked at most; beyond it the fullest buckets (idle users) are forgotten first, which only
/// ever gives someone a full bucket again.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
pub struct UserRate {
    rate: PrometheusRate,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl UserRate {
    pub fn new(rate: PrometheusRate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.rate.queries_per_minute
    }

    /// Takes one token of `user`'s bucket; `false` when it is empty.
    pub fn allow(&self, user: &str) -> bool {
        self.allow_at(user, Instant::now())
    }

    fn allow_at(&self, user: &str, now: Instant) -> bool {
        let burst = f64::from(self.rate.burst.max(1));
        let per_second = f64::from(self.rate.queries_per_minute) / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(user) {
            buckets.retain(|_, (_, last)| {
                now.duration_since(*last).as_secs_f64() * per_second < burst
            });
        }
        let (tokens, last) = buckets.entry(user.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_second).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_rate_holds_per_user() {
        let rate = UserRate::new(PrometheusRate {
            queries_per_minute: 60,
            burst: 3,
        });
        let t0 = Instant::now();
        assert!((0..3).all(|_| rate.allow_at("alice", t0)));
        assert!(!rate.allow_at("alice", t0));
        assert!(
            rate.allow_at("bob", t0),
            "another user has a bucket of their own"
        );
        assert!(!rate.allow_at("alice", t0 + Duration::from_millis(500)));
        assert!(rate.allow_at("alice", t0 + Duration::from_millis(1600)));
    }
}
