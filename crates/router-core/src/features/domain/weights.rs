//! The domain model's weight table, kept in memory the kernel can map with 2 MiB pages.
//!
//! Why: a prompt's features land in a few hundred buckets scattered over the table (2 MiB
//! at the default 16 bucket bits), so scoring one reads a few hundred rows on as many 4 KiB
//! pages. While a serving thread sleeps between requests, a virtual machine's host runs
//! other work on the core, and what the core held for those pages — their translations
//! most of all — is gone when the thread wakes. In 2 MiB pages the whole table is one
//! translation: on the host measured (an Intel Xeon virtual machine), the gateway's
//! decision on a long prompt after a 10 ms pause became 3–8 times faster at the median and
//! 2–4 times at p99 (BENCHMARKS.md, "The domain model's table in huge pages";
//! `bench/decision-ab.py`).
//!
//! How: a table of at least 2 MiB is allocated aligned to 2 MiB and, on Linux, marked with
//! `MADV_HUGEPAGE` and collapsed into huge pages at once (`MADV_COLLAPSE`, Linux 6.1 and
//! later). Both are hints: where transparent huge pages are off, or the kernel is older, or
//! no huge page is free, the table is the same table in ordinary pages. A smaller table is
//! an ordinary allocation: a huge page for it would mostly hold nothing.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The size of a transparent huge page on the platforms that have them (x86-64, and arm64
/// with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// A zero-initialised, fixed-length table of `f32`, in huge pages where it is large enough
/// and the system allows.
pub(super) struct Weights {
    ptr: NonNull<f32>,
    len: usize,
}

// SAFETY: `Weights` owns its allocation outright, like a `Box<[f32]>`, and hands out
// references only through `&self` / `&mut self`.
unsafe impl Send for Weights {}
unsafe impl Sync for Weights {}

impl Weights {
    /// A table of `len` zeros.
    pub(super) fn zeroed(len: usize) -> Weights {
        let Some(layout) = layout(len) else {
            return Weights { ptr: NonNull::dangling(), len: 0 };
        };
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<f32>()) else {
            alloc::handle_alloc_error(layout);
        };
        if layout.align() == HUGE_PAGE {
            advise_huge_pages(raw, layout.size());
        }
        Weights { ptr, len }
    }
}

/// The allocation for `len` weights: aligned to a huge page and a whole number of them when
/// the table fills at least one; `None` when it is empty.
fn layout(len: usize) -> Option<Layout> {
    let bytes = len.checked_mul(size_of::<f32>()).expect("a weight table fits in memory");
    if bytes == 0 {
        return None;
    }
    let layout = if bytes >= HUGE_PAGE {
        Layout::from_size_align(bytes.next_multiple_of(HUGE_PAGE), HUGE_PAGE)
    } else {
        Layout::array::<f32>(len)
    };
    Some(layout.expect("a weight table fits in memory"))
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(start: *mut u8, bytes: usize) {
    // Not in every libc the `libc` crate binds (musl's lacks it); the value is Linux's own.
    const MADV_COLLAPSE: libc::c_int = 25;
    // SAFETY: the range is exactly one live allocation of ours, aligned to the page size;
    // neither advice changes its contents. Failure only means ordinary pages, so the
    // results are not checked.
    unsafe {
        libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE);
        libc::madvise(start.cast(), bytes, MADV_COLLAPSE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_start: *mut u8, _bytes: usize) {}

impl Drop for Weights {
    fn drop(&mut self) {
        if let Some(layout) = layout(self.len) {
            // SAFETY: allocated in `zeroed` with this same layout.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

impl Deref for Weights {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `ptr` holds `len` initialised `f32`s (or is dangling with `len` 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Weights {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Clone for Weights {
    fn clone(&self) -> Weights {
        let mut copy = Weights::zeroed(self.len);
        copy.copy_from_slice(self);
        copy
    }
}

impl PartialEq for Weights {
    fn eq(&self, other: &Weights) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_holds_what_is_written_and_copies_it() {
        for len in [0, 1, 1000, HUGE_PAGE / 4, HUGE_PAGE / 4 + 1, 3 * HUGE_PAGE / 4] {
            let mut table = Weights::zeroed(len);
            assert_eq!(table.len(), len);
            assert!(table.iter().all(|&w| w == 0.0), "{len} weights start at zero");
            for (i, w) in table.iter_mut().enumerate() {
                *w = i as f32 * 0.5;
            }
            let copy = table.clone();
            assert!(copy == table);
            assert_eq!(copy.last(), len.checked_sub(1).map(|i| i as f32 * 0.5).as_ref());
            if len > 0 {
                table[0] = -1.0;
                assert_eq!(copy[0], 0.0, "the copy is its own memory");
            }
        }
    }

    #[test]
    fn a_large_table_starts_on_a_huge_page_boundary() {
        let table = Weights::zeroed(HUGE_PAGE / 4);
        assert_eq!(table.as_ptr() as usize % HUGE_PAGE, 0);
        let small = Weights::zeroed(1000);
        assert_eq!(small.as_ptr() as usize % align_of::<f32>(), 0);
    }

    /// Where the system has transparent huge pages on for the asking, the table lies in
    /// them. (Where it does not, there is nothing to check: the table is ordinary memory.)
    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_a_large_table_is_mapped_with_huge_pages_where_the_system_allows() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !(thp.contains("[always]") || thp.contains("[madvise]")) {
            return;
        }
        let mut table = Weights::zeroed(HUGE_PAGE / 4);
        table.fill(1.0);
        let start = table.as_ptr() as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let mut in_range = false;
        let mut huge_kib = None;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ')
                && let Some((from, to)) = range.split_once('-')
                && let (Ok(from), Ok(to)) =
                    (usize::from_str_radix(from, 16), usize::from_str_radix(to, 16))
            {
                in_range = from <= start && start < to;
            } else if in_range && let Some(kib) = line.strip_prefix("AnonHugePages:") {
                huge_kib = kib.trim().trim_end_matches(" kB").trim().parse::<u64>().ok();
            }
        }
        let huge_kib = huge_kib.expect("the table's mapping is in smaps");
        assert!(huge_kib >= 2048, "the table's mapping has {huge_kib} KiB in huge pages");
    }
}
