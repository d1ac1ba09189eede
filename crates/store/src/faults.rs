//! Fault-injection hooks for the integration tests (`crates/ipcamd/tests/faults.rs`),
//! wired in like the crash points ([`crate::crashpoint`]): compiled only into builds with
//! debug assertions (the test builds), empty inline functions in `--release`.
//!
//! | variable | read | effect |
//! | --- | --- | --- |
//! | `IPCAMD_FAULT_WRITE_DELAY_MS` | once, at the first [`crate::Store::open`] of the process | every write of sample data to a segment file sleeps this long first (a slow disk) |
//!
//! A hook that is set is logged once (warning) when it is read, so that a log shows why
//! the store was slow.

/// Called before each write of sample data: sleeps while `IPCAMD_FAULT_WRITE_DELAY_MS`
/// says so (debug builds only).
#[cfg(debug_assertions)]
pub(crate) fn before_data_write() {
    if let Some(delay) = write_delay() {
        std::thread::sleep(delay);
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn before_data_write() {}

/// Reads the variables (once per process; later calls do nothing).
#[cfg(debug_assertions)]
pub(crate) fn init() {
    let _ = write_delay();
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn init() {}

#[cfg(debug_assertions)]
fn write_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        let value = std::env::var("IPCAMD_FAULT_WRITE_DELAY_MS").ok()?;
        match value.trim().parse::<u64>() {
            Ok(ms) => {
                tracing::warn!(
                    "test hook IPCAMD_FAULT_WRITE_DELAY_MS={ms}: every sample-data write of \
                     the store sleeps {ms} ms first (a slow disk)"
                );
                Some(std::time::Duration::from_millis(ms))
            }
            Err(_) => {
                tracing::warn!(
                    "test hook IPCAMD_FAULT_WRITE_DELAY_MS={value:?} is not a number of \
                     milliseconds: ignored"
                );
                None
            }
        }
    })
}
