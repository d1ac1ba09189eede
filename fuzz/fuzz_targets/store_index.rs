//! The store's index formats (`store::format`: the per-segment frame blob and the
//! serialized track list), fed what a corrupt or hostile index row could hold: decoding
//! never panics, stops at the longest valid prefix, and what it decodes re-encodes to the
//! same frames and tracks (the checks are in `ipcamd_store::testing::fuzz_index_formats`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ipcamd_store::testing::fuzz_index_formats(data);
});
