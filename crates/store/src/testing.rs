//! Hooks for the examples and benchmarks (hidden from the docs): filling an index with
//! synthetic segments quickly (no media, sparse sample files), and index statistics.
//!
//! Left out: anything a production caller needs; these bypass the recorder.

use bytes::Bytes;
use ipcamd_proto::codec::{CodecParams, TrackInfo};
use ipcamd_proto::time::UnixMicros;
use rusqlite::params;

use crate::db::{self, DbContext};
use crate::format::{self, BlobWriter};
use crate::{lock, Store, StoreError};

/// The track list `synthesize_index` records with: one H.264 track.
pub fn synthetic_tracks() -> Vec<TrackInfo> {
    vec![TrackInfo::new(
        CodecParams::H264 {
            sps: Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5]),
            pps: Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
        },
        96,
    )]
}

/// Adds `segments` closed segments of `segment_us` each to a new section of `camera`,
/// starting at `start`: `fps` video frames per second, a keyframe every `gop` frames,
/// `frame_bytes` per frame (keyframes 10x). Sample files are created sparse, with the
/// right length. One transaction. Returns the number of frames.
#[allow(clippy::too_many_arguments)]
pub fn synthesize_index(
    store: &Store,
    camera: &str,
    start: UnixMicros,
    segments: u64,
    segment_us: i64,
    fps: u32,
    gop: u32,
    frame_bytes: u32,
) -> Result<u64, StoreError> {
    if !format::valid_camera_name(camera) {
        return Err(StoreError::BadCameraName(camera.to_string()));
    }
    let dir = store.root().join(camera);
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let mut conn = lock(&store.inner.db);
    let tx = conn.transaction().db("begin")?;
    let camera_id = match db::camera_id(&tx, camera)? {
        Some(id) => id,
        None => {
            tx.execute("INSERT INTO cameras (name) VALUES (?1)", [camera])
                .db("add camera")?;
            tx.last_insert_rowid()
        }
    };
    tx.execute(
        "INSERT INTO track_sets (camera_id, tracks) VALUES (?1, ?2)",
        params![camera_id, format::encode_tracks(&synthetic_tracks())],
    )
    .db("add track set")?;
    let set = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO sections (camera_id, track_set_id, start_us, end_us, bytes, frames, open) \
         VALUES (?1, ?2, ?3, ?3, 0, 0, 0)",
        params![camera_id, set, start],
    )
    .db("add section")?;
    let section = tx.last_insert_rowid();
    let per_segment = u64::try_from(segment_us).unwrap_or(0) * u64::from(fps) / 1_000_000;
    let frame_us = 1_000_000 / i64::from(fps.max(1));
    let mut n = 0u64;
    let (mut total_bytes, mut total_frames, mut end) = (0u64, 0u64, start);
    for s in 0..segments {
        let seg_start = start + s as i64 * segment_us;
        let mut blob = BlobWriter::new(seg_start);
        let (mut bytes, mut first_key, mut last_key) = (0u64, None, None);
        for i in 0..per_segment {
            let key = n.is_multiple_of(u64::from(gop.max(1)));
            let size = if key { frame_bytes * 10 } else { frame_bytes };
            let w = seg_start + i as i64 * frame_us;
            blob.push(0, key, size, n * 90_000 / u64::from(fps.max(1)), w);
            if key {
                first_key.get_or_insert(w);
                last_key = Some(w);
            }
            bytes += u64::from(size);
            end = w;
            n += 1;
        }
        tx.prepare_cached(
            "INSERT INTO segments (camera_id, section_id, start_us, end_us, bytes, frames, \
             first_key_us, last_key_us, frame_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .db("prepare")?
        .execute(params![
            camera_id,
            section,
            seg_start,
            end,
            bytes as i64,
            per_segment as i64,
            first_key,
            last_key,
            blob.bytes()
        ])
        .db("add segment")?;
        let id = tx.last_insert_rowid();
        let path = store.segment_path(camera, id);
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(bytes))
            .map_err(|e| StoreError::io(&path, e))?;
        total_bytes += bytes;
        total_frames += per_segment;
    }
    tx.execute(
        "UPDATE sections SET end_us = ?2, bytes = ?3, frames = ?4 WHERE id = ?1",
        params![section, end, total_bytes as i64, total_frames as i64],
    )
    .db("finish section")?;
    tx.commit().db("commit")?;
    Ok(total_frames)
}

/// Index statistics: (segments, frames, bytes of frame blobs).
pub fn index_stats(store: &Store) -> Result<(u64, u64, u64), StoreError> {
    let conn = lock(&store.inner.db);
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(frames), 0), COALESCE(SUM(LENGTH(frame_index)), 0) \
         FROM segments",
        [],
        |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )
    .db("index statistics")
}

/// `(id, start_us, end_us, bytes, frames)` of a segment.
pub type SegmentSummary = (i64, i64, i64, u64, u64);

/// One camera's segments, oldest first.
pub fn segments(store: &Store, camera: &str) -> Result<Vec<SegmentSummary>, StoreError> {
    let conn = lock(&store.inner.db);
    let Some(camera_id) = db::camera_id(&conn, camera)? else {
        return Ok(Vec::new());
    };
    let mut stmt = conn
        .prepare(
            "SELECT id, start_us, end_us, bytes, frames FROM segments WHERE camera_id = ?1 \
             ORDER BY start_us, id",
        )
        .db("prepare")?;
    let rows = stmt
        .query_map([camera_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, i64>(3)? as u64,
                r.get::<_, i64>(4)? as u64,
            ))
        })
        .db("query")?;
    rows.collect::<Result<Vec<_>, _>>().db("read")
}

/// The sample file of segment `id` of `camera` (for benchmarks that fill sparse files).
pub fn segment_file(store: &Store, camera: &str, id: i64) -> std::path::PathBuf {
    store.segment_path(camera, id)
}

/// The fuzz target `store_index` (fuzz/): decodes `data` as a frame index blob and as a
/// serialized track list (what a corrupt or hostile index on disk holds), and checks what
/// decoding promises: no panic; the frames are a prefix whose entry ends increase within
/// the blob; a blob re-encoded from the decoded frames decodes to the same frames; a
/// track list that decodes re-encodes to bytes that decode to the same list.
pub fn fuzz_index_formats(data: &[u8]) {
    let d = format::decode_blob(data);
    assert_eq!(d.frames.len(), d.entry_ends.len());
    let mut last = d.header_len;
    for &end in &d.entry_ends {
        assert!(
            end > last && end <= data.len(),
            "entry end {end} after {last}"
        );
        last = end;
    }
    if let Some(first) = d.frames.first() {
        // The header's base is the first frame's wallclock minus its delta; re-encode from
        // the first frame's own time and compare what the writer can express.
        let mut w = BlobWriter::new(first.wallclock);
        for f in &d.frames {
            w.push(f.track, f.key, f.size, f.pts, f.wallclock);
        }
        let again = format::decode_blob(w.bytes());
        assert!(again.fault.is_none(), "{:?}", again.fault);
        assert_eq!(again.frames, d.frames);
    }
    if let Ok(tracks) = format::decode_tracks(data) {
        let again = format::decode_tracks(&format::encode_tracks(&tracks));
        assert_eq!(again.as_ref().ok(), Some(&tracks), "{tracks:?}");
    }
}
