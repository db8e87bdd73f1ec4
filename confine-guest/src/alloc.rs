//! [`GuestAllocator`]: the system allocator, with out-of-memory as a clean, recognisable exit.

use crate::EXIT_OUT_OF_MEMORY;
use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, except that an allocation the process cannot get ends the guest at
/// once with [`EXIT_OUT_OF_MEMORY`] instead of Rust's default abort.
///
/// The host caps a guest's memory at the process level (`RLIMIT_DATA`); an engine without a
/// memory limit of its own (Boa) meets that cap as a failed allocation. With this allocator
/// the host sees a distinct exit status and reports the memory limit, not a crash. A guest
/// executable opts in:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: confine_guest::GuestAllocator = confine_guest::GuestAllocator;
/// ```
///
/// Code that handles allocation failure itself (`try_reserve`) also ends the guest: in a guest
/// that is the right outcome, since the cap is final.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestAllocator;

#[cold]
fn out_of_memory(size: usize) -> ! {
    // No allocation from here on: format into a stack buffer and write(2) it.
    let mut buf = [0u8; 96];
    let prefix = b"confine guest: out of memory (allocating ";
    let mut len = prefix.len();
    buf[..len].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let mut n = size;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        buf[len] = d;
        len += 1;
    }
    for &b in b" bytes)\n" {
        buf[len] = b;
        len += 1;
    }
    // SAFETY: writes our own buffer to stderr, then ends the process without unwinding or
    // running destructors (which could allocate).
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::_exit(EXIT_OUT_OF_MEMORY)
    }
}

// SAFETY: every method forwards to `System` with the same arguments; the only change is that
// a null result ends the process instead of being returned.
unsafe impl GlobalAlloc for GuestAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}
