//! Single-slot mailbox between the capture thread and inference.
//!
//! Full-policy: keep newest. `put` never blocks; if the previous item was not taken yet it is
//! replaced and counted as a drop, so inference always sees the freshest frame and capture never
//! stalls the camera (whose driver would otherwise drop frames itself, or lag by its queue).

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Slot<T> {
    item: Option<T>,
    drops: u64,
    closed: bool,
}

/// A Mutex+Condvar single-slot mailbox. Share it via `Arc`.
#[derive(Debug)]
pub struct LatestFrame<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

impl<T> Default for LatestFrame<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LatestFrame<T> {
    pub fn new() -> Self {
        LatestFrame {
            slot: Mutex::new(Slot {
                item: None,
                drops: 0,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    // A panic while holding the lock cannot leave the slot inconsistent (every critical section
    // is a few plain assignments), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store `item`, replacing (and counting as dropped) an item not taken yet. Returns `false`
    /// (and drops `item`) if the mailbox is closed.
    pub fn put(&self, item: T) -> bool {
        let mut s = self.lock();
        if s.closed {
            return false;
        }
        if s.item.replace(item).is_some() {
            s.drops += 1;
        }
        drop(s);
        self.ready.notify_one();
        true
    }

    /// Wait for an item. `None` once the mailbox is closed and empty (an item put before
    /// `close` is still delivered).
    pub fn take(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(item) = s.item.take() {
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// [`take`](Self::take) with a deadline: `None` on timeout or when closed and empty.
    pub fn take_timeout(&self, timeout: Duration) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if let Some(item) = s.item.take() {
                return Some(item);
            }
            let now = Instant::now();
            if s.closed || now >= deadline {
                return None;
            }
            s = self
                .ready
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Take the item if there is one, without waiting.
    pub fn try_take(&self) -> Option<T> {
        self.lock().item.take()
    }

    /// Items replaced before anyone took them.
    pub fn drops(&self) -> u64 {
        self.lock().drops
    }

    /// Refuse further `put`s and wake every waiter.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn keeps_newest_and_counts_drops() {
        let m = LatestFrame::new();
        assert!(m.put(1));
        assert!(m.put(2));
        assert!(m.put(3));
        assert_eq!(m.drops(), 2);
        assert_eq!(m.try_take(), Some(3));
        assert_eq!(m.try_take(), None);
        assert!(m.put(4));
        assert_eq!(m.take(), Some(4));
        assert_eq!(m.drops(), 2);
    }

    #[test]
    fn take_times_out_and_close_wakes_waiters() {
        let m = Arc::new(LatestFrame::<u32>::new());
        let t0 = Instant::now();
        assert_eq!(m.take_timeout(Duration::from_millis(30)), None);
        assert!(t0.elapsed() >= Duration::from_millis(30));

        let waiter = {
            let m = Arc::clone(&m);
            thread::spawn(move || m.take())
        };
        thread::sleep(Duration::from_millis(20));
        m.close();
        assert_eq!(waiter.join().expect("waiter"), None);
        assert!(!m.put(1), "closed mailbox refuses items");
        assert!(m.is_closed());
    }

    #[test]
    fn item_put_before_close_is_delivered() {
        let m = LatestFrame::new();
        m.put(7);
        m.close();
        assert_eq!(m.take(), Some(7));
        assert_eq!(m.take(), None);
    }

    #[test]
    fn fast_producer_slow_consumer_loses_only_counted_items() {
        let m = Arc::new(LatestFrame::new());
        let producer = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for i in 0..2000u64 {
                    m.put(i);
                    if i % 100 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
                m.close();
            })
        };
        let mut got = Vec::new();
        while let Some(i) = m.take() {
            got.push(i);
            thread::sleep(Duration::from_micros(200));
        }
        producer.join().expect("producer");
        // Strictly increasing (never an older frame after a newer one), ends with the last one,
        // and every item is either delivered or counted as dropped.
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(got.last(), Some(&1999));
        assert_eq!(got.len() as u64 + m.drops(), 2000);
    }
}
