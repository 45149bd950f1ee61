//! A tiny persistent thread pool for splitting one kernel's work, without allocating per call.
//!
//! `run(tasks, f)` calls `f(i)` for every `i` in `0..tasks` across the caller and the workers,
//! and returns when all calls are done. Workers spin briefly between jobs (ops come back to
//! back during a frame) and then sleep on a condvar, so an idle pool costs nothing.
//!
//! Tasks are handed out in contiguous blocks, thread `k` starting at the `k`-th block of
//! `0..tasks`; a thread that finishes its block takes what is left of the others' (one cursor
//! per block, claimed with `fetch_add`, so every task runs exactly once). Kernels number tasks
//! in output-row order, so consecutive ops give the same thread the same part of the tensor:
//! it reads what it wrote, from its own cache, instead of pulling half the activations from
//! the other core's (measured on the 10x10 depthwise layers of SSD MobileNet v2).
//!
//! Results never depend on the thread count: kernels split work into tasks that write disjoint
//! outputs and compute each output exactly as the single-threaded path does.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Job = *const (dyn Fn(usize) + Sync);

/// A task cursor alone on its cache lines (128 bytes: adjacent-line prefetch pairs lines).
#[repr(align(128))]
struct Cursor(AtomicUsize);

struct Inner {
    generation: AtomicU64,
    /// The current job and its task count. Written only by the caller of `run`, before it
    /// bumps `generation`; read by workers after they observe the new generation.
    job: UnsafeCell<(Option<Job>, usize)>,
    /// Per thread `k`: the next unclaimed task of its block `block(k)`, each on its own cache
    /// lines (threads claim from their own cursor with `fetch_add` on every task; sharing a
    /// line would move it between the cores on every claim).
    cursors: Box<[Cursor]>,
    /// Workers that have not finished the current generation yet.
    active: AtomicUsize,
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

// SAFETY: `job` is written only while no worker reads it (between generations: `run` waits for
// `active == 0` before returning, and writes the next job before publishing a new generation
// with release ordering); the job itself is `Sync`.
unsafe impl Sync for Inner {}
// SAFETY: as above; the raw job pointer is only dereferenced while the borrow it came from is
// alive (inside `run`).
unsafe impl Send for Inner {}

pub struct ThreadPool {
    inner: Arc<Inner>,
    workers: Vec<JoinHandle<()>>,
    /// Serializes `run` callers (the pool runs one job at a time).
    running: Mutex<()>,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThreadPool({} threads)", self.threads())
    }
}

const SPIN_ITERATIONS: u32 = 20_000;

/// Busy-wait iterations before a waiting thread starts yielding its time slice: when the
/// machine has more runnable threads than cores, a pure spin can burn a whole slice while the
/// thread it waits for is not even scheduled (measured: 2 threads 5x slower than 1 under a
/// load average of 8 on 2 cores).
const PURE_SPINS: u32 = 2_000;

/// One step of a wait loop: spin for the first `PURE_SPINS` steps, then yield.
#[inline]
fn backoff(step: u32) {
    if step < PURE_SPINS {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

impl ThreadPool {
    /// A pool using `threads` threads in total (the caller counts as one).
    pub fn new(threads: usize) -> ThreadPool {
        let inner = Arc::new(Inner {
            generation: AtomicU64::new(0),
            job: UnsafeCell::new((None, 0)),
            cursors: (0..threads.max(1))
                .map(|_| Cursor(AtomicUsize::new(0)))
                .collect(),
            active: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        });
        let workers = (1..threads.max(1))
            .map(|k| {
                let inner = inner.clone();
                std::thread::Builder::new()
                    .name(format!("spotter-kernel-{k}"))
                    .spawn(move || worker(&inner, k))
                    .expect("spawning a kernel thread")
            })
            .collect();
        ThreadPool {
            inner,
            workers,
            running: Mutex::new(()),
        }
    }

    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Call `f(i)` for all `i < tasks`, in parallel; returns when every call has returned.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        if tasks == 1 || self.workers.is_empty() {
            (0..tasks).for_each(f);
            return;
        }
        let _guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &*self.inner;
        // SAFETY: erase the borrow's lifetime; the pointer is used only until `active` drops to
        // zero below, before this function returns and the borrow ends.
        let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(f) };
        // SAFETY: no worker reads `job` now: the previous generation finished (active == 0).
        unsafe { *inner.job.get() = (Some(job), tasks) };
        for (k, c) in inner.cursors.iter().enumerate() {
            c.0.store(block(k, inner.cursors.len(), tasks).0, Ordering::Relaxed);
        }
        inner.active.store(self.workers.len(), Ordering::Relaxed);
        inner.generation.fetch_add(1, Ordering::SeqCst);
        if inner.sleepers.load(Ordering::SeqCst) > 0 {
            let _l = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
            inner.cv.notify_all();
        }
        run_tasks(inner, f, tasks, 0);
        let mut step = 0u32;
        while inner.active.load(Ordering::Acquire) != 0 {
            backoff(step);
            step = step.saturating_add(1);
        }
    }
}

/// Tasks `[begin, end)` of thread `k` of `threads` for `tasks` tasks: contiguous, sizes
/// differing by at most one.
fn block(k: usize, threads: usize, tasks: usize) -> (usize, usize) {
    (k * tasks / threads, (k + 1) * tasks / threads)
}

/// Run the tasks of thread `me`'s block, then help with the other blocks.
fn run_tasks(inner: &Inner, f: &(dyn Fn(usize) + Sync), tasks: usize, me: usize) {
    let n = inner.cursors.len();
    for j in (0..n).map(|d| (me + d) % n) {
        let end = block(j, n, tasks).1;
        loop {
            let i = inner.cursors[j].0.fetch_add(1, Ordering::Relaxed);
            if i >= end {
                break;
            }
            f(i);
        }
    }
}

fn worker(inner: &Inner, me: usize) {
    let mut seen = 0u64;
    loop {
        // Wait for a new generation: spin first, then sleep.
        let mut spins = 0;
        loop {
            if inner.shutdown.load(Ordering::Acquire) {
                return;
            }
            if inner.generation.load(Ordering::Acquire) != seen {
                break;
            }
            if spins < SPIN_ITERATIONS {
                backoff(spins);
                spins += 1;
                continue;
            }
            let mut g = inner.lock.lock().unwrap_or_else(|e| e.into_inner());
            inner.sleepers.fetch_add(1, Ordering::SeqCst);
            while inner.generation.load(Ordering::SeqCst) == seen
                && !inner.shutdown.load(Ordering::SeqCst)
            {
                g = inner.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            inner.sleepers.fetch_sub(1, Ordering::SeqCst);
            drop(g);
            spins = 0;
        }
        seen = inner.generation.load(Ordering::Acquire);
        // SAFETY: the caller wrote the job before publishing this generation (SeqCst/Acquire
        // pair) and keeps it alive until we decrement `active`.
        let (job, tasks) = unsafe { *inner.job.get() };
        if let Some(job) = job {
            // SAFETY: see above; the pointee outlives this use.
            let f = unsafe { &*job };
            run_tasks(inner, f, tasks, me);
        }
        inner.active.fetch_sub(1, Ordering::Release);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        {
            let _l = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.inner.cv.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_exactly_once() {
        let pool = ThreadPool::new(3);
        for tasks in [0usize, 1, 2, 7, 100] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            pool.run(tasks, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn many_back_to_back_jobs_and_sleeping_workers() {
        let pool = ThreadPool::new(2);
        let total = AtomicUsize::new(0);
        for round in 0..2000 {
            pool.run(4, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            });
            if round == 1000 {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        }
        assert_eq!(total.load(Ordering::Relaxed), 8000);
    }
}
