//! A small bounded cache of verified collateral and verified PCK chains.
//!
//! Entries are keyed by content hashes (and the anchor they were verified under) and carry the
//! validity window of everything that went into them: a lookup at a time outside the window
//! misses, so a cached result never outlives a certificate, CRL, TCB info or QE identity.

use std::sync::{Arc, Mutex, MutexGuard};

use super::chain::Window;

/// Entries per table; least recently used goes first.
pub(crate) const CAPACITY: usize = 64;

#[derive(Debug)]
struct Slot<V> {
    key: [u8; 32],
    window: Window,
    last_used: u64,
    value: Arc<V>,
}

#[derive(Debug)]
struct Table<V> {
    slots: Vec<Slot<V>>,
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self { slots: Vec::new() }
    }
}

impl<V> Table<V> {
    fn get(&mut self, key: &[u8; 32], now: i64, tick: u64) -> Option<Arc<V>> {
        let slot = self.slots.iter_mut().find(|s| &s.key == key)?;
        if !slot.window.contains(now) {
            return None;
        }
        slot.last_used = tick;
        Some(slot.value.clone())
    }

    fn put(&mut self, key: [u8; 32], window: Window, value: Arc<V>, tick: u64) {
        self.slots.retain(|s| s.key != key);
        if self.slots.len() >= CAPACITY {
            if let Some(oldest) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i)
            {
                self.slots.swap_remove(oldest);
            }
        }
        self.slots.push(Slot {
            key,
            window,
            last_used: tick,
            value,
        });
    }
}

#[derive(Debug)]
struct Inner<C, P> {
    tick: u64,
    collateral: Table<C>,
    pck: Table<P>,
}

/// Two tables behind one mutex: held only for lookups and inserts, never while verifying.
#[derive(Debug)]
pub(crate) struct Cache<C, P> {
    inner: Mutex<Inner<C, P>>,
}

impl<C, P> Default for Cache<C, P> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                tick: 0,
                collateral: Table::default(),
                pck: Table::default(),
            }),
        }
    }
}

impl<C, P> Cache<C, P> {
    fn lock(&self) -> MutexGuard<'_, Inner<C, P>> {
        // A panic while holding the lock cannot leave a half-written entry (inserts are
        // single pushes), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn collateral(&self, key: &[u8; 32], now: i64) -> Option<Arc<C>> {
        let mut inner = self.lock();
        inner.tick = inner.tick.wrapping_add(1);
        let tick = inner.tick;
        inner.collateral.get(key, now, tick)
    }

    pub fn put_collateral(&self, key: [u8; 32], window: Window, value: Arc<C>) {
        let mut inner = self.lock();
        inner.tick = inner.tick.wrapping_add(1);
        let tick = inner.tick;
        inner.collateral.put(key, window, value, tick);
    }

    pub fn pck(&self, key: &[u8; 32], now: i64) -> Option<Arc<P>> {
        let mut inner = self.lock();
        inner.tick = inner.tick.wrapping_add(1);
        let tick = inner.tick;
        inner.pck.get(key, now, tick)
    }

    pub fn put_pck(&self, key: [u8; 32], window: Window, value: Arc<P>) {
        let mut inner = self.lock();
        inner.tick = inner.tick.wrapping_add(1);
        let tick = inner.tick;
        inner.pck.put(key, window, value, tick);
    }

    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.collateral.slots.clear();
        inner.pck.slots.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.collateral.slots.len(), inner.pck.slots.len())
    }
}
