//! Retention (docs/store.md "Retention"): deletes whole segments, oldest first, by age and
//! size per camera and by size over the whole store, never one that a reader has pinned or
//! a recorder is writing.
//!
//! Rows go first (with their sections fixed up, in one transaction), files after the
//! commit: a crash in between leaves orphan files that recovery removes.
//!
//! Left out: thinning (keeping every n-th keyframe of old footage), and protecting footage
//! marked as evidence.

use std::path::PathBuf;

use ipcamd_proto::time::UnixMicros;
use rusqlite::{params, Connection};

use crate::db::DbContext;
use crate::{db, lock, micros, OpenMode, RetentionReport, Store, StoreError};

struct Candidate {
    id: i64,
    camera: String,
    section_id: i64,
    bytes: u64,
    frames: u64,
}

pub(crate) fn apply(store: &Store, now: UnixMicros) -> Result<RetentionReport, StoreError> {
    let opts = &store.inner.opts;
    let mut report = RetentionReport::default();
    if store.inner.mode != OpenMode::Primary {
        return Ok(report);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    {
        let mut conn = lock(&store.inner.db);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .db("begin retention")?;
        let cameras = db::cameras(&tx)?;
        for (camera_id, name) in &cameras {
            let own = opts.per_camera.get(name);
            if let Some(age) = own.and_then(|r| r.max_age).or(opts.max_age) {
                let cutoff = now.saturating_sub(micros(age));
                let due = select(
                    store,
                    &tx,
                    "WHERE segments.camera_id = ?1 AND segments.start_us < ?2",
                    params![camera_id, cutoff],
                    &mut report,
                    |c, end| (end < cutoff).then_some(c),
                    u64::MAX,
                )?;
                delete(store, &tx, due, &mut report, &mut files)?;
            }
            if let Some(max) = own.and_then(|r| r.max_bytes) {
                let total: i64 = tx
                    .query_row(
                        "SELECT COALESCE(SUM(bytes), 0) FROM sections WHERE camera_id = ?1",
                        [camera_id],
                        |r| r.get(0),
                    )
                    .db("sum a camera's bytes")?;
                let excess = u64::try_from(total).unwrap_or(0).saturating_sub(max);
                if excess > 0 {
                    let due = select(
                        store,
                        &tx,
                        "WHERE segments.camera_id = ?1",
                        params![camera_id],
                        &mut report,
                        |c, _| Some(c),
                        excess,
                    )?;
                    delete(store, &tx, due, &mut report, &mut files)?;
                }
            }
        }
        if let Some(max) = opts.max_bytes {
            let total: i64 = tx
                .query_row("SELECT COALESCE(SUM(bytes), 0) FROM sections", [], |r| {
                    r.get(0)
                })
                .db("sum all bytes")?;
            let excess = u64::try_from(total).unwrap_or(0).saturating_sub(max);
            if excess > 0 {
                let due = select(
                    store,
                    &tx,
                    "",
                    params![],
                    &mut report,
                    |c, _| Some(c),
                    excess,
                )?;
                delete(store, &tx, due, &mut report, &mut files)?;
            }
        }
        tx.commit().db("commit retention")?;
    }
    if !files.is_empty() {
        crate::crashpoint::hit("retention_committed");
    }
    for path in files {
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), "retention: cannot remove: {e}");
            }
        }
        crate::crashpoint::hit("retention_file_removed");
    }
    if report.deleted_segments > 0 {
        tracing::info!(
            "retention: deleted {} segments ({} bytes), skipped {} in use",
            report.deleted_segments,
            report.deleted_bytes,
            report.skipped_in_use
        );
    }
    Ok(report)
}

/// Walks segments oldest first (`filter` is a WHERE clause on `segments`), keeping those
/// that `pick` accepts and that are not in use, until their bytes reach `enough`.
fn select(
    store: &Store,
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
    report: &mut RetentionReport,
    pick: impl Fn(Candidate, UnixMicros) -> Option<Candidate>,
    enough: u64,
) -> Result<Vec<Candidate>, StoreError> {
    let sql = format!(
        "SELECT segments.id, cameras.name, section_id, segments.bytes, segments.frames, \
         segments.end_us, sections.open, segments.camera_id FROM segments \
         JOIN cameras ON cameras.id = segments.camera_id \
         JOIN sections ON sections.id = segments.section_id \
         {filter} ORDER BY segments.start_us, segments.id"
    );
    let mut stmt = conn.prepare_cached(&sql).db("prepare retention scan")?;
    let mut rows = stmt.query(params).db("scan for retention")?;
    let mut out = Vec::new();
    let mut sum = 0u64;
    let state = lock(&store.inner.state);
    while sum < enough {
        let Some(r) = rows.next().db("read retention scan")? else {
            break;
        };
        let c = Candidate {
            id: r.get(0).db("read id")?,
            camera: r.get(1).db("read camera")?,
            section_id: r.get(2).db("read section")?,
            bytes: u64::try_from(r.get::<_, i64>(3).db("read bytes")?).unwrap_or(0),
            frames: u64::try_from(r.get::<_, i64>(4).db("read frames")?).unwrap_or(0),
        };
        let end: UnixMicros = r.get(5).db("read end")?;
        let open = r.get::<_, i64>(6).db("read open")? != 0;
        let camera_id: i64 = r.get(7).db("read camera id")?;
        let Some(c) = pick(c, end) else {
            continue;
        };
        // A section still open that no recorder of this process writes is being recorded
        // by another process (docs/store.md "Several processes"): its rows are that
        // recorder's to update, so none of its segments goes.
        // (A section this process gave up on a full disk is not foreign.)
        let foreign = open
            && !state.recording.contains(&camera_id)
            && !state.unclosed.contains(&c.section_id);
        if foreign || state.in_use(c.id) {
            report.skipped_in_use += 1;
            continue;
        }
        sum = sum.saturating_add(c.bytes);
        out.push(c);
    }
    Ok(out)
}

fn delete(
    store: &Store,
    conn: &Connection,
    due: Vec<Candidate>,
    report: &mut RetentionReport,
    files: &mut Vec<PathBuf>,
) -> Result<(), StoreError> {
    for c in due {
        conn.prepare_cached("DELETE FROM segments WHERE id = ?1")
            .db("prepare segment delete")?
            .execute([c.id])
            .db("delete a segment")?;
        // Incremental section update: MIN over the (section_id, start_us) index.
        conn.prepare_cached(
            "UPDATE sections SET bytes = MAX(bytes - ?2, 0), frames = MAX(frames - ?3, 0), \
             start_us = COALESCE((SELECT MIN(start_us) FROM segments WHERE section_id = ?1), \
             start_us) WHERE id = ?1",
        )
        .db("prepare section update")?
        .execute(params![c.section_id, c.bytes as i64, c.frames as i64])
        .db("update a section")?;
        conn.prepare_cached(
            "DELETE FROM sections WHERE id = ?1 AND open = 0 AND NOT EXISTS \
             (SELECT 1 FROM segments WHERE section_id = ?1)",
        )
        .db("prepare section delete")?
        .execute([c.section_id])
        .db("delete a section")?;
        report.deleted_segments += 1;
        report.deleted_bytes += c.bytes;
        files.push(store.segment_path(&c.camera, c.id));
    }
    Ok(())
}
