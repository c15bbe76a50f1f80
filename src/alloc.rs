//! The process's allocator, chosen once per process: mimalloc (v3) for every command but
//! `compact`, the C library's malloc for `compact`.
//!
//! mimalloc: conversion allocates and frees many mid-sized buffers; glibc malloc spent ~5% of
//! import CPU there (callgrind), mimalloc less, and its defaults (transparent huge pages, freed
//! memory kept for a second) make queries ~10% faster than mimalloc v2 did.
//!
//! glibc malloc for `compact`: compaction's Parquet page encoders free and re-allocate buffers
//! at a high rate, and mimalloc's per-thread pages and delayed purging kept peak RSS at 60-73
//! MiB on the 5x24h benchmark lake where glibc's stays at 48 MiB, at the same CPU time
//! (`promlake-bench compact`). `compact` re-executes itself with [`ALLOCATOR_ENV`] set (see
//! `lean_memory` in main.rs), so the choice is made before the process's first allocation
//! and never changes: every block is freed by the allocator that made it.

#![allow(unsafe_code, reason = "a GlobalAlloc delegating to two allocators")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// Set to `system` to use the C library's malloc for the whole process.
pub const ALLOCATOR_ENV: &str = "PROMLAKE_ALLOCATOR";
/// [`ALLOCATOR_ENV`] for `getenv`.
const ALLOCATOR_ENV_C: &std::ffi::CStr = c"PROMLAKE_ALLOCATOR";

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// mimalloc or the system allocator, fixed by the environment at the first allocation.
#[derive(Debug)]
pub struct ProcessAlloc;

#[global_allocator]
static GLOBAL: ProcessAlloc = ProcessAlloc;

/// The allocator in use; decided on the first call. The first allocation happens on the main
/// thread before any other thread exists, so the decision cannot race.
#[inline]
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => {
            // SAFETY: getenv with a NUL-terminated name; it allocates nothing, and no thread
            // can be changing the environment before the first allocation.
            let value = unsafe { libc::getenv(ALLOCATOR_ENV_C.as_ptr()) };
            // SAFETY: a non-null result points at a NUL-terminated string in the environment.
            let system = !value.is_null() && unsafe { std::ffi::CStr::from_ptr(value) } == c"system";
            let c = if system { SYSTEM } else { MIMALLOC };
            CHOICE.store(c, Ordering::Relaxed);
            c
        }
        c => c,
    }
}

// SAFETY: every method forwards to the same allocator for the life of the process (the choice
// never changes once made), so blocks are always freed and resized by the allocator that made
// them, and both allocators uphold GlobalAlloc's contract.
unsafe impl GlobalAlloc for ProcessAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { if choice() == SYSTEM { System.alloc(layout) } else { mimalloc::MiMalloc.alloc(layout) } }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if choice() == SYSTEM {
                System.alloc_zeroed(layout)
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the same allocator (see above).
        unsafe {
            if choice() == SYSTEM {
                System.dealloc(ptr, layout)
            } else {
                mimalloc::MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from the same allocator (see above).
        unsafe {
            if choice() == SYSTEM {
                System.realloc(ptr, layout, new_size)
            } else {
                mimalloc::MiMalloc.realloc(ptr, layout, new_size)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_has_one_name() {
        assert_eq!(ALLOCATOR_ENV_C.to_str().ok(), Some(ALLOCATOR_ENV));
        // This test process did not set the variable: mimalloc.
        assert_eq!(choice(), MIMALLOC);
    }
}
