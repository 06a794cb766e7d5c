//! Measurement prototype for issue 24 (not built into reaper): a bounded size-class allocator
//! for a single-threaded process, to price musl's mallocng on reaper's wake-up path and in
//! the binary. Drop it into src/ and register it from main.rs with
//! `#[global_allocator] static A: tinyalloc::Tiny = tinyalloc::Tiny::new();` to measure.
//!
//! Power-of-two classes 16..=4096 B with intrusive free lists, refilled from 64 KiB mmap'd
//! chunks by bumping; larger blocks are mmap'd and munmap'd whole. Never returns small
//! blocks to the kernel. Not thread-safe: reaper has one thread, and nothing allocates
//! between fork and exec.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr::null_mut;

const CLASSES: usize = 9; // 16, 32, ..., 4096
const CHUNK: usize = 64 * 1024;

struct Inner {
    free: [*mut u8; CLASSES],
    bump: *mut u8,
    end: *mut u8,
}

pub struct Tiny(UnsafeCell<Inner>);

// SAFETY: reaper is single-threaded (see the module comment).
unsafe impl Sync for Tiny {}

impl Tiny {
    pub const fn new() -> Tiny {
        Tiny(UnsafeCell::new(Inner { free: [null_mut(); CLASSES], bump: null_mut(), end: null_mut() }))
    }
}

fn class(layout: &Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(16);
    if size > 4096 {
        return None;
    }
    Some((size.next_power_of_two().trailing_zeros() - 4) as usize)
}

unsafe fn map(len: usize) -> *mut u8 {
    // SAFETY: anonymous private mapping; the kernel picks the address.
    let p = unsafe {
        libc::mmap(null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    if p == libc::MAP_FAILED { null_mut() } else { p.cast() }
}

unsafe impl GlobalAlloc for Tiny {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded; no reentrancy (nothing here allocates).
        let s = unsafe { &mut *self.0.get() };
        let Some(c) = class(&layout) else {
            return unsafe { map(layout.size().next_multiple_of(4096)) };
        };
        let head = s.free[c];
        if !head.is_null() {
            // SAFETY: a freed block of this class holds the next pointer in its first word.
            s.free[c] = unsafe { *(head as *mut *mut u8) };
            return head;
        }
        let size = 16usize << c;
        // Blocks are aligned to their size: the bump pointer is rounded up to it.
        let mut p = s.bump.wrapping_add(s.bump.align_offset(size));
        if s.bump.is_null() || p.wrapping_add(size) > s.end {
            let chunk = unsafe { map(CHUNK) };
            if chunk.is_null() {
                return null_mut();
            }
            s.end = chunk.wrapping_add(CHUNK);
            p = chunk;
        }
        s.bump = p.wrapping_add(size);
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in alloc.
        let s = unsafe { &mut *self.0.get() };
        match class(&layout) {
            Some(c) => {
                // SAFETY: the block is at least 16 B and ours again.
                unsafe { *(ptr as *mut *mut u8) = s.free[c] };
                s.free[c] = ptr;
            }
            None => unsafe {
                libc::munmap(ptr.cast(), layout.size().next_multiple_of(4096));
            },
        }
    }
}
