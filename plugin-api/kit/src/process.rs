//! Process-wide settings for programs that host libtorch plugins (not part of the ABI).
//!
//! libtorch allocates every activation and gradient with `posix_memalign`. glibc serves
//! blocks above its mmap threshold (at most 32 MiB) with fresh `mmap`s and unmaps them on
//! free, so a PPO minibatch of 2048 Procgen frames, whose activations are hundreds of MiB
//! each, faults in and zero-fills gigabytes of new pages every gradient step. On a 2-core
//! CPU that was about half of the bf16 update's time (measured: 880k page faults and 2.9 s
//! per minibatch, against 1.5 s with freed memory kept). Keeping freed memory in the heap
//! removes that cost; the price is that the process keeps its peak heap size until it exits.

/// Makes glibc's malloc serve every block from the heap and never give freed memory back to
/// the kernel, so repeated large tensor allocations reuse pages already mapped.
///
/// Call once, early, from the program's main thread, before plugins allocate. Returns
/// whether the settings took: false on targets without glibc, or when the environment sets
/// `METARL_MALLOC=system` (the escape hatch for memory-tight machines).
pub fn keep_freed_memory() -> bool {
    if std::env::var_os("METARL_MALLOC").is_some_and(|v| v == "system") {
        return false;
    }
    imp::keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    pub fn keep_freed_memory() -> bool {
        // SAFETY: mallopt only adjusts allocator parameters; it is safe to call at any time.
        unsafe {
            // No direct mmap for large blocks: they come from the heap and return to it.
            let no_mmap = libc::mallopt(libc::M_MMAP_MAX, 0) == 1;
            // Never trim the heap's top back to the kernel.
            let no_trim = libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1;
            no_mmap && no_trim
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub fn keep_freed_memory() -> bool {
        false
    }
}

/// Sets the thread count of OpenMP and MKL for the whole process (`OMP_NUM_THREADS`,
/// `MKL_NUM_THREADS`), unless the environment already sets them. Call once at start, before
/// any plugin is loaded: libtorch reads them when it first starts its pool, and plugins then
/// get the same number in their requests (`AlgoRequest::threads`), so none of them needs to
/// change the pool.
pub fn limit_threads(threads: u32) {
    for var in ["OMP_NUM_THREADS", "MKL_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            // Called from the main thread before other threads exist.
            std::env::set_var(var, threads.max(1).to_string());
        }
    }
}
