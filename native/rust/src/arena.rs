//! Append-only storage in fixed-size chunks, for the sparse Merkle tree.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const CHUNK_BITS: u32 = 16;
pub const CHUNK: usize = 1 << CHUNK_BITS;

/// Append-only storage in fixed chunks: growing never moves or copies what
/// is already there (a single Vec would copy hundreds of MiB now and then).
/// (Backing chunks with huge pages was tried: no faster here, and the
/// kernel's compaction added stalls.)
pub struct Arena<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
    /// The next chunk, whose pages a pool thread is touching ahead of use:
    /// on this kind of VM a page fault costs microseconds, which would
    /// otherwise land on the update that first writes there.
    spare: Option<(Vec<T>, Arc<AtomicBool>)>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            chunks: Vec::new(),
            len: 0,
            spare: None,
        }
    }
}

impl<T> Drop for Arena<T> {
    fn drop(&mut self) {
        // The spare chunk must outlive the thread touching its pages.
        if let Some((_, done)) = &self.spare {
            while !done.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }
    }
}

/// A chunk with its pages being faulted in on a pool thread.
fn prefaulted_chunk<T>() -> (Vec<T>, Arc<AtomicBool>) {
    let chunk: Vec<T> = Vec::with_capacity(CHUNK);
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let (start, bytes) = (chunk.as_ptr() as usize, CHUNK * std::mem::size_of::<T>());
    rayon::spawn(move || {
        for offset in (0..bytes).step_by(4096) {
            // SAFETY: the chunk's spare capacity is not read or written by
            // anyone else until `done` is set (see `Arena::push`).
            unsafe { std::ptr::write_volatile((start + offset) as *mut u8, 0) };
        }
        flag.store(true, Ordering::Release);
    });
    (chunk, done)
}

impl<T> Arena<T> {
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn get(&self, i: u32) -> &T {
        &self.chunks[(i >> CHUNK_BITS) as usize][i as usize & (CHUNK - 1)]
    }

    pub fn push(&mut self, e: T) -> u32 {
        if self.len % CHUNK == 0 {
            let chunk = match self.spare.take() {
                Some((chunk, done)) => {
                    while !done.load(Ordering::Acquire) {
                        std::thread::yield_now();
                    }
                    chunk
                }
                None => Vec::with_capacity(CHUNK),
            };
            self.chunks.push(chunk);
            self.spare = Some(prefaulted_chunk());
        }
        self.chunks.last_mut().expect("a chunk with room").push(e);
        self.len += 1;
        (self.len - 1) as u32
    }

    #[inline]
    pub fn prefetch(&self, i: u32) {
        #[cfg(target_arch = "x86_64")]
        {
            let p = self.get(i) as *const T as *const i8;
            // SAFETY: a prefetch is only a hint, and `p` points into the arena.
            unsafe {
                std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
                std::arch::x86_64::_mm_prefetch(p.wrapping_add(64), std::arch::x86_64::_MM_HINT_T0);
            }
        }
    }
}
