//! Advisory lock files that let several processes share one store (docs/store.md "Several
//! processes"): `<root>/.locks/store.lock` is held by the one *primary* opener (recovery
//! and retention), `<root>/.locks/camera-<name>.lock` by whichever process records into
//! that camera. Both are `flock(2)` locks through [`std::fs::File::try_lock`]: the kernel
//! releases them when the process dies, so a crash never leaves a stale lock behind, and
//! two opens of the same file in one process conflict like two processes do.
//!
//! The lock files are empty and never deleted (deleting a lock file another process has
//! open would let a third process lock a new file of the same name). `.locks` cannot be a
//! camera folder: camera names never start with a dot.
//!
//! Left out: network file systems (flock over NFS is not reliable; neither is SQLite's
//! WAL there).

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Folder of the lock files, under the store root.
pub(crate) const LOCK_DIR: &str = ".locks";

/// An exclusive lock, held until dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

/// Path of the primary opener's lock.
pub(crate) fn store_lock_path(root: &Path) -> PathBuf {
    root.join(LOCK_DIR).join("store.lock")
}

/// Path of a camera's writer lock (`camera` is a valid camera name).
pub(crate) fn camera_lock_path(root: &Path, camera: &str) -> PathBuf {
    root.join(LOCK_DIR).join(format!("camera-{camera}.lock"))
}

/// Takes the lock at `path` without waiting; `Ok(None)` if someone else holds it.
pub(crate) fn try_lock(path: &Path) -> Result<Option<FileLock>, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(FileLock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(StoreError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_of_the_same_file_fails_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = camera_lock_path(dir.path(), "cam");
        let first = try_lock(&path).unwrap();
        assert!(first.is_some());
        assert!(try_lock(&path).unwrap().is_none());
        drop(first);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
