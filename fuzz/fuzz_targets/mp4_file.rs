//! The MP4/MOV file reader (`media::file::FileSource`, read from memory with
//! `FileSource::from_reader`) fed what a corrupt or hostile file on disk could hold: the
//! `moov` (tracks, sample entries, sample tables) parses or fails with a message, and a
//! parsed file gives every unit it indexes (at most 10,000), its H.264/H.265 samples
//! rewritten to Annex B, or an error; never a panic, and units never go back in wallclock
//! (the checks are in `ipcamd_media::file::fuzz_mp4`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ipcamd_media::file::fuzz_mp4(data);
});
