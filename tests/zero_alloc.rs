//! After warm-up, running the Coral model allocates nothing, at 1 and 2 threads, on every
//! kernel tier this CPU runs. Counted process-wide (kernel pool threads included), so this
//! test runs without libtest's harness, whose own threads allocate (e.g. slow-test notices).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use spotter::kernels::Isa;
use spotter::model::tflite;
use spotter::runtime::{Session, SessionOptions};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    coral_runs_allocate_nothing_after_warm_up();
    println!("test coral_runs_allocate_nothing_after_warm_up ... ok");
    println!("1 passed, 0 failed");
}

fn coral_runs_allocate_nothing_after_warm_up() {
    let graph = tflite::load(&common::coral_model()).unwrap();
    for isa in Isa::available() {
        for threads in [1, 2] {
            let opts = SessionOptions {
                threads,
                isa: Some(isa),
                ..Default::default()
            };
            let mut session = Session::new(graph.clone(), opts).unwrap();
            for (i, b) in session.input_mut(0).iter_mut().enumerate() {
                *b = (i * 7 % 256) as u8;
            }
            for _ in 0..2 {
                session.run();
            }
            ALLOCS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            for _ in 0..5 {
                session.run();
            }
            COUNTING.store(false, Ordering::SeqCst);
            let n = ALLOCS.load(Ordering::SeqCst);
            assert_eq!(
                n, 0,
                "{isa}, {threads} thread(s): {n} allocations in 5 runs"
            );
        }
    }
}
