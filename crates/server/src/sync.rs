//! Locking helper shared by every room.

use std::sync::{Mutex, MutexGuard};

/// Locks a std mutex, keeping the data if a panicking thread poisoned it (every critical
/// section in this crate leaves the data consistent).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
