//! Enforcement of the per-plugin limits that are not the epoch deadline: the store's memory limiter and
//! the concurrency gate.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Table growth beyond this is refused whatever the plugin: tables hold function references, and no
/// sane plugin needs more than the pool's slots.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Caps the total linear memory of every instance in one call's store. A refused growth makes
/// `memory.grow` fail inside the guest (its allocator then aborts, which traps); `denied` records that
/// the limit was the cause, so the error can name it instead of reporting a bare trap.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    cap: u64,
    in_use: u64,
    pub(crate) denied: Option<u64>,
}

impl MemoryLimiter {
    pub(crate) fn new(cap: u64) -> Self {
        MemoryLimiter {
            cap,
            in_use: 0,
            denied: None,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Instantiation reports each memory as growing from 0, so summing the growth covers every
        // memory of every core instance in the store.
        let growth = desired.saturating_sub(current) as u64;
        let wanted = self.in_use.saturating_add(growth);
        if wanted > self.cap {
            self.denied = Some(wanted);
            return Ok(false);
        }
        self.in_use = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Bounds the calls of one plugin in flight at once (`limits.concurrency`). `acquire` blocks; callers
/// run plugin calls on blocking threads (`tokio::task::spawn_blocking` in the agent) anyway, since a call
/// runs guest code synchronously.
#[derive(Debug, Clone)]
pub struct ConcurrencyGate {
    inner: Arc<(Mutex<u32>, Condvar)>,
    limit: u32,
}

/// A held slot; dropping it lets the next call in.
#[derive(Debug)]
pub struct ConcurrencyPermit {
    gate: ConcurrencyGate,
}

impl ConcurrencyGate {
    pub fn new(limit: u32) -> Self {
        ConcurrencyGate {
            inner: Arc::new((Mutex::new(0), Condvar::new())),
            limit: limit.max(1),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Calls holding a permit now.
    pub fn in_flight(&self) -> u32 {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for a free slot.
    pub fn acquire(&self) -> ConcurrencyPermit {
        let (count, freed) = &*self.inner;
        let mut in_flight = count.lock().unwrap_or_else(PoisonError::into_inner);
        while *in_flight >= self.limit {
            in_flight = freed
                .wait(in_flight)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *in_flight += 1;
        ConcurrencyPermit { gate: self.clone() }
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<ConcurrencyPermit> {
        let mut in_flight = self.inner.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *in_flight >= self.limit {
            return None;
        }
        *in_flight += 1;
        Some(ConcurrencyPermit { gate: self.clone() })
    }
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        let (count, freed) = &*self.gate.inner;
        let mut in_flight = count.lock().unwrap_or_else(PoisonError::into_inner);
        *in_flight -= 1;
        freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn the_gate_admits_up_to_its_limit_and_reopens_when_a_permit_drops() {
        let gate = ConcurrencyGate::new(2);
        let first = gate.acquire();
        let _second = gate.try_acquire().expect("second slot is free");
        assert!(gate.try_acquire().is_none(), "a third call must wait");
        assert_eq!(gate.in_flight(), 2);
        drop(first);
        assert!(
            gate.try_acquire().is_some(),
            "a dropped permit frees its slot"
        );
    }

    #[test]
    fn a_blocked_acquire_proceeds_once_a_slot_frees() {
        let gate = ConcurrencyGate::new(1);
        let held = gate.acquire();
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let _permit = gate.acquire();
                done.send(()).unwrap();
            })
        };
        drop(held);
        finished.recv().expect("the waiting call gets the slot");
        waiter.join().unwrap();
        assert_eq!(gate.in_flight(), 0);
    }

    #[test]
    fn the_limiter_counts_every_memory_and_records_a_refusal() {
        let mut limiter = MemoryLimiter::new(10 << 20);
        assert!(limiter.memory_growing(0, 6 << 20, None).unwrap());
        assert!(
            limiter.memory_growing(0, 3 << 20, None).unwrap(),
            "a second memory fits"
        );
        assert!(
            !limiter.memory_growing(3 << 20, 5 << 20, None).unwrap(),
            "11 MiB in total is over"
        );
        assert_eq!(limiter.denied, Some(11 << 20));
    }
}
