//! The global allocator of the `weir` binary and benches: mimalloc, called the way the C
//! library is fastest.
//!
//! The `mimalloc` crate passes every Rust allocation to `mi_malloc_aligned`. For a block of
//! more than 1 KiB, or when the size class has no free block at hand, mimalloc's aligned
//! path looks for a size class that is a power of two and otherwise over-allocates
//! (`size + alignment`, then adjusts), even for the 8- or 16-byte alignment that every
//! mimalloc block has anyway. A request through a route with filters boxes several futures
//! of one to two KiB, so it took that slow path several times (about 1,100 instructions per
//! request, counted with callgrind). Like `std`'s `System` allocator over `malloc`, this
//! calls the plain functions whenever their guaranteed alignment suffices, and the aligned
//! ones only for the rare types that ask for more.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Every mimalloc block of 16 bytes or more is 16-byte aligned (its size classes are
/// multiples of 16 on 64-bit targets; `MI_MAX_ALIGN_SIZE`), and smaller ones are aligned to
/// their size rounded to a power of two.
const PLAIN_ALIGN: usize = 16;

/// Whether the plain (unaligned) functions give an address good enough for `layout`.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// mimalloc as Rust's global allocator; see the module documentation.
pub struct MiMalloc;

// SAFETY: every function forwards to mimalloc, whose blocks satisfy the layout: the plain
// functions are used only when their guaranteed alignment covers `layout.align()`, and a block
// is freed or resized by the same library that made it (`mi_free` and `mi_realloc` accept
// blocks from both the plain and the aligned functions).
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()) as *mut u8
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()) as *mut u8
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
            } else {
                mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocations of every size and alignment a program asks for come back aligned, keep
    /// their contents across `realloc`, and are freed without complaint.
    #[test]
    fn blocks_are_aligned_and_keep_their_contents() {
        let a = MiMalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 7, 8, 15, 16, 24, 33, 100, 1000, 1584, 2072, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    std::ptr::write_bytes(p, 0xa5, size);
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "realloc {size} align {align}");
                    assert!((0..size).all(|i| *grown.add(i) == 0xa5));
                    a.dealloc(grown, Layout::from_size_align(size * 3, align).unwrap());

                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
