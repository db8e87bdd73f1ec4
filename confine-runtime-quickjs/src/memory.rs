//! The guest-wide memory budget every container's QuickJS runtime allocates from.
//!
//! QuickJS's own `JS_SetMemoryLimit` counts per runtime, and this crate makes a runtime per
//! container, so a limit there would multiply with the number of containers. Instead every
//! runtime gets an [`Allocator`] that charges one shared [`MemoryBudget`]: past the budget an
//! allocation returns null, which QuickJS turns into a catchable `InternalError: out of
//! memory` in the script that asked, and the container stays usable.
//!
//! The budget counts what `malloc_usable_size` reports, as QuickJS's default allocator does.
//! It is a soft limit: the host's process-level cap (`RLIMIT_DATA`) holds whatever this
//! accounting misses.

use rquickjs::allocator::Allocator;
use std::{cell::Cell, rc::Rc};

/// Below this much free budget a new container is refused up front: QuickJS cannot recover
/// from running out while it builds a context's intrinsics (quickjs-ng#1181).
pub(crate) const CONTAINER_HEADROOM: usize = 512 * 1024;

/// Bytes allocated by every container of the guest, against an optional limit.
#[derive(Debug, Default)]
pub(crate) struct MemoryBudget {
    used: Cell<usize>,
    /// `0`: no limit.
    limit: Cell<usize>,
    /// Set when an allocation was refused; taken by [`MemoryBudget::take_refused`].
    refused: Cell<bool>,
}

impl MemoryBudget {
    /// Sets the limit in bytes (`None`: none).
    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        let bytes = limit.map_or(0, |l| usize::try_from(l).unwrap_or(usize::MAX).max(1));
        self.limit.set(bytes);
    }

    /// The limit in bytes, if there is one.
    pub(crate) fn limit(&self) -> Option<usize> {
        Some(self.limit.get()).filter(|&l| l > 0)
    }

    /// Bytes in use by every container.
    pub(crate) fn used(&self) -> usize {
        self.used.get()
    }

    /// `true` if room for a new container is left.
    pub(crate) fn has_room_for_container(&self) -> bool {
        self.limit()
            .is_none_or(|l| l.saturating_sub(self.used.get()) >= CONTAINER_HEADROOM)
    }

    /// Whether an allocation was refused since the last call, and clears it.
    pub(crate) fn take_refused(&self) -> bool {
        self.refused.replace(false)
    }

    /// Whether `extra` more bytes fit.
    fn admit(&self, extra: usize) -> bool {
        let limit = self.limit.get();
        if limit == 0 || self.used.get().saturating_add(extra) <= limit {
            return true;
        }
        self.refused.set(true);
        false
    }
}

/// One QuickJS runtime's allocator: libc's malloc, charged to the shared budget.
pub(crate) struct BudgetAllocator(pub(crate) Rc<MemoryBudget>);

fn usable(ptr: *mut u8) -> usize {
    // SAFETY: `ptr` is null or a live block from libc's allocator.
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

// SAFETY: every block comes from libc's malloc family, which aligns to at least
// `2 * size_of::<usize>()`, and `usable_size` is libc's own answer for that block.
unsafe impl Allocator for BudgetAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.0.admit(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain malloc; a null result is passed on.
        let ptr = unsafe { libc::malloc(size.max(1)) }.cast::<u8>();
        self.0.used.set(self.0.used.get() + usable(ptr));
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.0.admit(total) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain calloc; a null result is passed on.
        let ptr = unsafe { libc::calloc(count.max(1), size.max(1)) }.cast::<u8>();
        self.0.used.set(self.0.used.get() + usable(ptr));
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        let size = usable(ptr);
        self.0.used.set(self.0.used.get().saturating_sub(size));
        // SAFETY: the caller passes a block from this allocator.
        unsafe { libc::free(ptr.cast()) };
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        let old = usable(ptr);
        if new_size > old && !self.0.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller passes a block from this allocator (or null).
        let new = unsafe { libc::realloc(ptr.cast(), new_size) }.cast::<u8>();
        if new.is_null() {
            // realloc(p, 0) may free and return null; a failed realloc keeps the old block.
            if new_size == 0 {
                self.0.used.set(self.0.used.get().saturating_sub(old));
            }
            return new;
        }
        let now = usable(new);
        self.0.used.set(self.0.used.get().saturating_sub(old) + now);
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        usable(ptr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_gives_back_on_free() {
        let budget = Rc::new(MemoryBudget::default());
        budget.set_limit(Some(64 * 1024));
        let mut a = BudgetAllocator(budget.clone());
        let p = a.alloc(32 * 1024);
        assert!(!p.is_null());
        assert!(budget.used() >= 32 * 1024);
        assert!(a.alloc(40 * 1024).is_null());
        assert!(budget.take_refused());
        assert!(!budget.take_refused());
        // SAFETY: `p` came from `a`.
        let grown = unsafe { a.realloc(p, 60 * 1024) };
        assert!(!grown.is_null());
        // SAFETY: `grown` came from `a`.
        assert!(unsafe { a.realloc(grown, 128 * 1024) }.is_null());
        // SAFETY: `grown` is still live after the refused realloc.
        unsafe { a.dealloc(grown) };
        assert_eq!(budget.used(), 0);
        assert!(a.calloc(usize::MAX, 2).is_null());
    }

    #[test]
    fn no_limit_admits_everything() {
        let budget = Rc::new(MemoryBudget::default());
        let mut a = BudgetAllocator(budget.clone());
        let p = a.calloc(1024, 1024);
        assert!(!p.is_null());
        assert!(budget.has_room_for_container());
        // SAFETY: `p` came from `a`.
        unsafe { a.dealloc(p) };
        assert_eq!(budget.used(), 0);
    }
}
