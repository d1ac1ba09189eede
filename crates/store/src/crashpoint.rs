//! Named points in the write path where the crash-point harness
//! (`src/bin/store_crashpoint.rs`, docs/store.md "Crash-point testing") can stop the process
//! or snapshot the files. The store only calls [`hit`]; what happens there is the hook a
//! test binary installs with [`set_hook`].
//!
//! Cost: in builds without debug assertions (`--release`) [`hit`] is an empty inline
//! function and [`set_hook`] does nothing; in debug builds it is one atomic load per
//! flush, segment start or retention run.
//!
//! The points, in write order:
//!
//! | point | where | state on disk there |
//! | --- | --- | --- |
//! | `segment_row_inserted` | `recorder.rs` new segment | row with 0 frames, no file yet |
//! | `segment_file_created` | `recorder.rs` new segment | empty file, directory synced |
//! | `after_data_fsync` | `recorder.rs` flush | data durable, index not yet updated |
//! | `after_index_commit` | `recorder.rs` flush | index references the new data |
//! | `retention_committed` | `retention.rs` | rows deleted, files not yet removed |
//! | `retention_file_removed` | `retention.rs` | after each file removal |

/// Calls the installed hook, if any, with the point's name.
#[cfg(debug_assertions)]
pub(crate) fn hit(point: &'static str) {
    if let Some(hook) = HOOK.get() {
        hook(point);
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn hit(_point: &'static str) {}

#[cfg(debug_assertions)]
static HOOK: std::sync::OnceLock<fn(&'static str)> = std::sync::OnceLock::new();

/// Installs the process's hook (the first call wins). Returns false where hooks are compiled
/// out (release builds) or one is installed already.
pub fn set_hook(hook: fn(&'static str)) -> bool {
    #[cfg(debug_assertions)]
    {
        HOOK.set(hook).is_ok()
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = hook;
        false
    }
}
