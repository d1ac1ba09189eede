//! Recovery at open (docs/store.md, the recovery table): makes the index and the sample
//! files agree again after a crash, a power cut or outside damage, logging every repair
//! with the camera, segment id and path.
//!
//! Cost: one `stat` per segment and one directory listing per camera; a segment's frame
//! blob is decoded only when its file length disagrees with its row or its section was
//! still open (being recorded) when the store was last closed.
//!
//! Left out: checking the contents of referenced bytes (no checksums; see the reader's
//! framing check), and repairing a corrupt SQLite file itself (`Store::open` fails).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{params, Connection};

use crate::db::{self, DbContext};
use crate::format::{self, FrameMeta};
use crate::{lock, locks, Store, StoreError};

pub(crate) fn recover(store: &Store) -> Result<(), StoreError> {
    let mut conn = lock(&store.inner.db);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db("begin recovery")?;
    // A camera that another process records into (`Store::open_shared`) holds its lock
    // file: its rows and files are live, not crashed; it is recovered at a later open. The
    // other cameras' locks are held until recovery is done, so nobody starts recording
    // them meanwhile.
    let mut held = Vec::new();
    let mut cameras = Vec::new();
    for (camera_id, camera) in db::cameras(&tx)? {
        match locks::try_lock(&locks::camera_lock_path(&store.inner.root, &camera))? {
            Some(l) => {
                held.push(l);
                cameras.push((camera_id, camera));
            }
            None => tracing::info!(
                "camera {camera}: another process is recording it; not checked at this open"
            ),
        }
    }
    let ours: HashSet<i64> = cameras.iter().map(|(id, _)| *id).collect();
    let open_sections: HashSet<i64> = {
        let mut stmt = tx
            .prepare("SELECT id, camera_id FROM sections WHERE open != 0")
            .db("prepare open sections")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .db("query open sections")?;
        let rows: Vec<(i64, i64)> = rows.collect::<Result<_, _>>().db("read open sections")?;
        rows.into_iter()
            .filter(|(_, camera)| ours.contains(camera))
            .map(|(id, _)| id)
            .collect()
    };
    let mut touched: HashSet<i64> = open_sections.clone();
    let mut seek_tracks: HashMap<i64, u32> = HashMap::new();
    for (camera_id, camera) in &cameras {
        let (camera_id, camera) = (*camera_id, camera.as_str());
        let dir = store.inner.root.join(camera);
        let mut known = HashSet::new();
        let rows: Vec<(i64, i64, i64, u64, u64)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT segments.id, section_id, track_set_id, segments.bytes, \
                     segments.frames FROM segments JOIN sections ON sections.id = section_id \
                     WHERE segments.camera_id = ?1",
                )
                .db("prepare segment scan")?;
            let rows = stmt
                .query_map([camera_id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                        u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                    ))
                })
                .db("scan segments")?;
            rows.collect::<Result<_, _>>().db("read segments")?
        };
        for (id, section_id, track_set_id, bytes, frames) in rows {
            known.insert(id);
            let path = store.segment_path(camera, id);
            let len = match std::fs::metadata(&path) {
                Ok(m) => m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if frames > 0 {
                        tracing::warn!(
                            "camera {camera}: segment {id} ({}): file is missing; segment dropped \
                             ({frames} frames)",
                            path.display()
                        );
                    }
                    delete_segment(&tx, id)?;
                    touched.insert(section_id);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(
                        "camera {camera}: segment {id} ({}): cannot stat: {e}; left as is",
                        path.display()
                    );
                    continue;
                }
            };
            if frames == 0 {
                tracing::debug!(
                    "camera {camera}: segment {id} ({}): empty segment removed",
                    path.display()
                );
                delete_segment(&tx, id)?;
                remove_file(&path);
                touched.insert(section_id);
                continue;
            }
            if len == bytes && !open_sections.contains(&section_id) {
                continue;
            }
            let seek_track = match seek_tracks.get(&track_set_id) {
                Some(&t) => t,
                None => {
                    let t = db::track_set_blob(&tx, track_set_id)?
                        .and_then(|b| format::decode_tracks(&b).ok())
                        .map_or(0, |t| format::seek_track(&t));
                    seek_tracks.insert(track_set_id, t);
                    t
                }
            };
            let kept = repair_segment(&tx, camera, id, &path, len, bytes, frames, seek_track)?;
            if kept != Some((frames, bytes)) {
                touched.insert(section_id);
            }
        }
        remove_orphans(camera, &dir, &known);
    }
    for &section in &touched {
        if db::refresh_section(&tx, section)? {
            tx.execute("UPDATE sections SET open = 0 WHERE id = ?1", [section])
                .db("close a section")?;
            if open_sections.contains(&section) {
                let (camera, frames, end): (String, i64, i64) = tx
                    .query_row(
                        "SELECT cameras.name, frames, end_us FROM sections \
                         JOIN cameras ON cameras.id = camera_id WHERE sections.id = ?1",
                        [section],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .db("describe a section")?;
                tracing::info!(
                    "camera {camera}: section {section} was still being recorded (the recorder \
                     did not close it): closed with {frames} frames, last unit at {end} µs UTC"
                );
            }
        }
    }
    let mut empty = 0;
    for (camera_id, _) in &cameras {
        empty += tx
            .execute(
                "DELETE FROM sections WHERE camera_id = ?1 AND NOT EXISTS \
                 (SELECT 1 FROM segments WHERE segments.section_id = sections.id)",
                [camera_id],
            )
            .db("drop empty sections")?;
    }
    if empty > 0 {
        tracing::debug!("index: dropped {empty} sections without segments");
    }
    tx.commit().db("commit recovery")?;
    drop(held);
    Ok(())
}

/// Trims a segment whose row and file disagree (or that was being written) to the frames
/// that are whole in the file and consistent in the blob. Returns the kept `(frames,
/// bytes)`, or `None` if the segment was dropped.
#[allow(clippy::too_many_arguments)]
fn repair_segment(
    conn: &Connection,
    camera: &str,
    id: i64,
    path: &Path,
    len: u64,
    bytes: u64,
    frames: u64,
    seek_track: u32,
) -> Result<Option<(u64, u64)>, StoreError> {
    let blob: Vec<u8> = conn
        .query_row(
            "SELECT frame_index FROM segments WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .db("read a frame index")?;
    let decoded = format::decode_blob(&blob);
    let limit = len.min(bytes);
    let kept: Vec<FrameMeta> = decoded
        .frames
        .iter()
        .take(usize::try_from(frames).unwrap_or(usize::MAX))
        .take_while(|f| f.end() <= limit)
        .copied()
        .collect();
    let kept_bytes = kept.last().map_or(0, FrameMeta::end);
    let kept_frames = kept.len() as u64;
    let mut why = Vec::new();
    if let Some(fault) = &decoded.fault {
        why.push(format!("frame index is corrupt: {fault}"));
    }
    if (decoded.frames.len() as u64) < frames {
        why.push(format!(
            "row says {frames} frames, index holds {}",
            decoded.frames.len()
        ));
    }
    if len < bytes {
        why.push(format!("file has {len} of the {bytes} bytes indexed"));
    }
    let what = if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join("; "))
    };
    let shown = path.display();
    let Some((start, end, first_key, last_key)) = format::summarize(&kept, seek_track) else {
        tracing::warn!(
            "camera {camera}: segment {id} ({shown}): no whole frame left{what}; segment dropped"
        );
        delete_segment(conn, id)?;
        remove_file(path);
        return Ok(None);
    };
    if kept_frames != frames || kept_bytes != bytes || decoded.fault.is_some() {
        let blob = blob.get(..decoded.prefix_len(kept.len())).unwrap_or(&[]);
        conn.execute(
            "UPDATE segments SET start_us = ?2, end_us = ?3, bytes = ?4, frames = ?5, \
             first_key_us = ?6, last_key_us = ?7, frame_index = ?8 WHERE id = ?1",
            params![
                id,
                start,
                end,
                kept_bytes as i64,
                kept_frames as i64,
                first_key,
                last_key,
                blob
            ],
        )
        .db("repair a segment")?;
    }
    if len > kept_bytes {
        let truncated = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| {
                f.set_len(kept_bytes)?;
                f.sync_all()
            });
        if let Err(e) = truncated {
            tracing::warn!("camera {camera}: segment {id} ({shown}): cannot truncate: {e}");
        }
    }
    if kept_frames != frames || len != kept_bytes {
        tracing::warn!(
            "camera {camera}: segment {id} ({shown}): kept {kept_frames} frames, dropped {} \
             frames and {} bytes{what}",
            frames - kept_frames.min(frames),
            len.saturating_sub(kept_bytes)
        );
    }
    Ok(Some((kept_frames, kept_bytes)))
}

fn delete_segment(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.execute("DELETE FROM segments WHERE id = ?1", [id])
        .db("delete a segment")?;
    Ok(())
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), "cannot remove: {e}");
        }
    }
}

/// `<n>.seg` files without a row are the rest of a retention delete cut short: removed.
fn remove_orphans(camera: &str, dir: &Path, known: &HashSet<i64>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!("camera {camera}: cannot list {}: {e}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let id = name
            .strip_suffix(".seg")
            .and_then(|n| n.parse::<i64>().ok());
        match id {
            Some(id) if known.contains(&id) => {}
            Some(id) => {
                tracing::warn!(
                    "camera {camera}: segment {id} ({}): file without index row; orphan file \
                     removed",
                    entry.path().display()
                );
                remove_file(&entry.path());
            }
            None => tracing::warn!(
                "camera {camera}: {}: not a segment file; left alone",
                entry.path().display()
            ),
        }
    }
}
