//! Admission of webhooks to be stored: at most `server.max_concurrent_requests` at once. One
//! that finds every slot taken waits for one, first come first served, for at most
//! `server.max_wait_ms`, while the bodies waiting total at most `server.max_waiting_bytes`;
//! past either bound it is shed (the caller answers 503 `overloaded`).
//!
//! Why a wait at all: a burst of Freshsales webhooks (a bulk update fires one per contact)
//! is over as fast as it came, and Freshsales may never resend a webhook answered 503. And a
//! shed webhook costs CPU too: clients shed at once come straight back, and with many more
//! clients than slots (2000 connections, 256 slots) answering them took most of the CPU from
//! the webhooks being stored (2.2 k stored a second, against 12.7 k with the wait). The
//! waiting room is bounded in bytes, so memory stays bounded whatever clients do.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The waiting room counts in KiB.
const UNIT: usize = 1024;
/// What a waiting webhook holds besides its body, charged in the waiting room: its request's
/// futures and state (about 5 KiB measured with heaptrack, 2000 connections).
const PER_REQUEST_KIB: usize = 5;

/// The bounds: slots, the waiting room's bytes, the longest wait.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub slots: usize,
    pub waiting_bytes: usize,
    pub max_wait: Duration,
}

/// Why a webhook was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Every slot was taken and the waiting room had no room for this body.
    Full,
    /// It waited `max_wait` and no slot came free.
    Waited,
}

/// The slots and the waiting room; cheap to share (`Arc`s inside).
#[derive(Debug, Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    /// Permits are KiB of waiting bodies.
    room: Arc<Semaphore>,
    total: usize,
    room_total: usize,
    max_wait: Duration,
}

/// Held while a webhook is stored; dropping it frees the slot for the next in line.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    /// True when it had to wait for the slot.
    pub waited: bool,
}

impl Admission {
    pub fn new(bounds: Bounds) -> Self {
        let total = bounds.slots.clamp(1, Semaphore::MAX_PERMITS);
        let room = (bounds.waiting_bytes / UNIT).min(Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(total)),
            room: Arc::new(Semaphore::new(room)),
            total,
            room_total: room,
            max_wait: bounds.max_wait,
        }
    }

    /// A slot for a webhook whose body is `body_bytes` long: at once when one is free, else
    /// after waiting in line within the bounds.
    pub async fn admit(&self, body_bytes: usize) -> Result<Slot, Shed> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(Slot {
                _permit: permit,
                waited: false,
            });
        }
        if self.max_wait.is_zero() {
            return Err(Shed::Full);
        }
        let charge =
            u32::try_from(body_bytes.div_ceil(UNIT) + PER_REQUEST_KIB).map_err(|_| Shed::Full)?;
        let Ok(seat) = Arc::clone(&self.room).try_acquire_many_owned(charge) else {
            return Err(Shed::Full);
        };
        let permit = tokio::time::timeout(self.max_wait, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| Shed::Waited)?
            .map_err(|_| Shed::Waited)?;
        drop(seat);
        Ok(Slot {
            _permit: permit,
            waited: true,
        })
    }

    /// True while any webhook is being stored (or waiting to be).
    pub fn busy(&self) -> bool {
        self.slots.available_permits() < self.total
    }

    /// KiB the webhooks waiting in line are charged now (0: nobody waits).
    pub fn waiting_kib(&self) -> usize {
        self.room_total - self.room.available_permits()
    }

    /// Every slot, held until the guard is dropped (tests: a relay saturated on purpose).
    pub fn take_all(&self) -> Option<OwnedSemaphorePermit> {
        let all = u32::try_from(self.total).ok()?;
        Arc::clone(&self.slots).try_acquire_many_owned(all).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Until the waiting room charges `kib` (the spawned waiters are in line).
    async fn until_waiting(a: &Admission, kib: usize) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while a.waiting_kib() != kib {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the waiters got in line");
    }

    fn admission(slots: usize, waiting_bytes: usize, wait_ms: u64) -> Admission {
        Admission::new(Bounds {
            slots,
            waiting_bytes,
            max_wait: Duration::from_millis(wait_ms),
        })
    }

    #[tokio::test]
    async fn a_free_slot_is_taken_at_once_and_given_back_on_drop() {
        let a = admission(1, 0, 0);
        let slot = a.admit(10).await.expect("free slot");
        assert!(!slot.waited);
        assert!(a.busy());
        assert_eq!(
            a.admit(10).await.unwrap_err(),
            Shed::Full,
            "no waiting room"
        );
        drop(slot);
        assert!(!a.busy());
        assert!(a.admit(10).await.is_ok());
    }

    #[tokio::test]
    async fn a_webhook_waits_for_the_slot_that_comes_free() {
        let a = admission(1, 64 * 1024, 5_000);
        let held = a.admit(10).await.expect("slot");
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move { a.admit(10).await })
        };
        until_waiting(&a, 1 + PER_REQUEST_KIB).await;
        assert!(!waiter.is_finished(), "it waits while the slot is held");
        drop(held);
        let slot = waiter
            .await
            .expect("task")
            .expect("admitted after the wait");
        assert!(slot.waited);
    }

    #[tokio::test]
    async fn the_wait_is_bounded_in_time() {
        let a = admission(1, 64 * 1024, 50);
        let _held = a.admit(10).await.expect("slot");
        let started = std::time::Instant::now();
        assert_eq!(a.admit(10).await.unwrap_err(), Shed::Waited);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn the_waiting_room_is_bounded_in_bytes() {
        // 16 KiB of room: a 5 KiB body (10 KiB charged) waits, a second one does not fit.
        let a = admission(1, 16 * 1024, 5_000);
        let held = a.admit(10).await.expect("slot");
        let first = {
            let a = a.clone();
            tokio::spawn(async move { a.admit(5 * 1024).await })
        };
        until_waiting(&a, 10).await;
        assert_eq!(a.admit(5 * 1024).await.unwrap_err(), Shed::Full);
        assert_eq!(
            a.admit(2 * 1024).await.unwrap_err(),
            Shed::Full,
            "7 KiB charged, 6 KiB left"
        );
        drop(held);
        assert!(first.await.expect("task").is_ok());
        // The room is free again once the waiter got its slot.
        assert_eq!(a.waiting_kib(), 0);
        let _slot = a.admit(10).await;
        let b = a.clone();
        let waiter = tokio::spawn(async move { b.admit(5 * 1024).await });
        until_waiting(&a, 10).await;
        assert!(!waiter.is_finished(), "a seat was free for it");
    }

    #[tokio::test]
    async fn waiters_are_served_in_arrival_order() {
        let a = admission(1, 64 * 1024, 5_000);
        let held = a.admit(10).await.expect("slot");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..5 {
            let tx = tx.clone();
            let waiter = a.clone();
            tokio::spawn(async move {
                let slot = waiter.admit(10).await.expect("admitted");
                tx.send(i).expect("send");
                drop(slot);
            });
            // The next one only joins once this one is in line.
            until_waiting(&a, (i + 1) * (1 + PER_REQUEST_KIB)).await;
        }
        drop(held);
        let mut order = Vec::new();
        for _ in 0..5 {
            order.push(rx.recv().await.expect("one each"));
        }
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
    }
}
