//! The SQLite index (docs/store.md "Index schema"): opening it (WAL, in the mode of the
//! store handle), the schema, and the few queries every other module shares.
//!
//! All access of one store handle goes through one `rusqlite::Connection` behind the
//! store's mutex; every query here runs with that lock held by the caller. Transactions
//! that write start with `BEGIN IMMEDIATE` (they take SQLite's write lock first, waiting up
//! to [`BUSY_TIMEOUT`] for another process's commit) rather than upgrading a read
//! transaction, which SQLite would refuse at once if another connection wrote meanwhile. The queries that find footage by time use
//! the `(camera_id, start_us)` / `(section_id, start_us)` indices with `LIMIT 1`, so they
//! are O(log n) in the number of segments.
//!
//! Left out: schema migrations (the schema has one version, checked at open).

use std::path::Path;

use ipcamd_proto::time::UnixMicros;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{OpenMode, StoreError};

pub(crate) const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cameras (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS track_sets (
    id INTEGER PRIMARY KEY,
    camera_id INTEGER NOT NULL REFERENCES cameras(id),
    tracks BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS track_sets_camera ON track_sets(camera_id);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY,
    camera_id INTEGER NOT NULL REFERENCES cameras(id),
    track_set_id INTEGER NOT NULL REFERENCES track_sets(id),
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    open INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sections_camera_start ON sections(camera_id, start_us);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id INTEGER NOT NULL REFERENCES cameras(id),
    section_id INTEGER NOT NULL REFERENCES sections(id),
    start_us INTEGER NOT NULL,
    end_us INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    first_key_us INTEGER,
    last_key_us INTEGER,
    frame_index BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS segments_camera_start ON segments(camera_id, start_us);
CREATE INDEX IF NOT EXISTS segments_section_start ON segments(section_id, start_us);
CREATE INDEX IF NOT EXISTS segments_start ON segments(start_us);
";

/// `StoreError::Db` with what was being done.
pub(crate) trait DbContext<T> {
    fn db(self, what: &str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn db(self, what: &str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Db {
            what: what.to_string(),
            source,
        })
    }
}

/// How long a writer waits for SQLite's write lock while another connection (this
/// process's other handle, or another process sharing the store) commits.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the index in `mode` (the primary opener creates it if needed). Exclusion between
/// openers is the lock files' job (`locks.rs`); SQLite runs in its normal locking mode so
/// that other processes can read (WAL) and, one at a time, write.
pub(crate) fn open(path: &Path, mode: OpenMode) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let flags = match mode {
        OpenMode::Primary => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        // Read-only handles still open read-write: a WAL reader needs to write the
        // shared-memory index; `query_only` below refuses every write statement.
        OpenMode::Shared | OpenMode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_WRITE,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if mode != OpenMode::Primary && !path.exists() {
        return Err(StoreError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no store index here (nothing was ever recorded or imported)",
            ),
        });
    }
    let conn = Connection::open_with_flags(path, flags).db("open the index")?;
    conn.busy_timeout(BUSY_TIMEOUT).db("set busy_timeout")?;
    if mode == OpenMode::ReadOnly {
        conn.pragma_update(None, "query_only", "ON")
            .db("set query_only")?;
    } else {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .db("set journal_mode=WAL")?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), "index journal mode is {mode}, not WAL");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .db("set synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .db("set foreign_keys")?;
    }
    if mode == OpenMode::Primary {
        conn.execute_batch(SCHEMA).db("create the schema")?;
    }
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .db("read the schema version")?;
    match version {
        None if mode == OpenMode::Primary => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION],
            )
            .db("write the schema version")?;
        }
        None => {
            return Err(StoreError::Corrupt(format!(
                "{}: no schema version (the store was never opened by a writer)",
                path.display()
            )))
        }
        Some(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(StoreError::Corrupt(format!(
                "{}: schema version {v}, this build reads {SCHEMA_VERSION}",
                path.display()
            )))
        }
    }
    Ok(conn)
}

/// What kind of write failure a database error is.
pub(crate) fn write_fault(e: &rusqlite::Error) -> crate::WriteFault {
    use crate::WriteFault;
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => WriteFault::DiskFull,
        Some(ErrorCode::ReadOnly) => WriteFault::ReadOnly,
        Some(ErrorCode::PermissionDenied) => WriteFault::Permission,
        _ => WriteFault::Other,
    }
}

/// A segment row.
#[derive(Debug, Clone)]
pub(crate) struct SegmentRow {
    pub id: i64,
    pub section_id: i64,
    pub start_us: UnixMicros,
    pub bytes: u64,
    pub frames: u64,
    pub blob: Vec<u8>,
}

pub(crate) const SEGMENT_COLUMNS: &str = "id, section_id, start_us, bytes, frames, frame_index";

impl SegmentRow {
    pub fn from_row(r: &Row<'_>) -> rusqlite::Result<SegmentRow> {
        Ok(SegmentRow {
            id: r.get(0)?,
            section_id: r.get(1)?,
            start_us: r.get(2)?,
            bytes: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            frames: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            blob: r.get(5)?,
        })
    }
}

/// Runs a segment query (`SELECT <SEGMENT_COLUMNS> FROM segments ...`) returning one row.
pub(crate) fn segment_query(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Option<SegmentRow>, StoreError> {
    let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments {tail}");
    let mut stmt = conn.prepare_cached(&sql).db("prepare a segment query")?;
    stmt.query_row(params, SegmentRow::from_row)
        .optional()
        .db("query segments")
}

/// A section row.
#[derive(Debug, Clone)]
pub(crate) struct SectionRow {
    pub id: i64,
    pub track_set_id: i64,
    pub start_us: UnixMicros,
    pub end_us: UnixMicros,
    pub bytes: u64,
    pub frames: u64,
    pub open: bool,
}

pub(crate) const SECTION_COLUMNS: &str = "id, track_set_id, start_us, end_us, bytes, frames, open";

impl SectionRow {
    pub fn from_row(r: &Row<'_>) -> rusqlite::Result<SectionRow> {
        Ok(SectionRow {
            id: r.get(0)?,
            track_set_id: r.get(1)?,
            start_us: r.get(2)?,
            end_us: r.get(3)?,
            bytes: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            frames: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
            open: r.get::<_, i64>(6)? != 0,
        })
    }
}

pub(crate) fn section_query(
    conn: &Connection,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Option<SectionRow>, StoreError> {
    let sql = format!("SELECT {SECTION_COLUMNS} FROM sections {tail}");
    let mut stmt = conn.prepare_cached(&sql).db("prepare a section query")?;
    stmt.query_row(params, SectionRow::from_row)
        .optional()
        .db("query sections")
}

pub(crate) fn sections_of(
    conn: &Connection,
    camera_id: i64,
) -> Result<Vec<SectionRow>, StoreError> {
    let sql = format!(
        "SELECT {SECTION_COLUMNS} FROM sections WHERE camera_id = ?1 AND frames > 0 \
         ORDER BY start_us, id"
    );
    let mut stmt = conn.prepare_cached(&sql).db("prepare sections")?;
    let rows = stmt
        .query_map([camera_id], SectionRow::from_row)
        .db("query sections")?;
    rows.collect::<Result<Vec<_>, _>>().db("read sections")
}

pub(crate) fn camera_id(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT id FROM cameras WHERE name = ?1")
        .db("prepare camera lookup")?
        .query_row([name], |r| r.get(0))
        .optional()
        .db("look up camera")
}

pub(crate) fn cameras(conn: &Connection) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name FROM cameras ORDER BY name")
        .db("prepare cameras")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .db("query cameras")?;
    rows.collect::<Result<Vec<_>, _>>().db("read cameras")
}

/// The serialized track list of a track set.
pub(crate) fn track_set_blob(conn: &Connection, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT tracks FROM track_sets WHERE id = ?1")
        .db("prepare track set")?
        .query_row([id], |r| r.get(0))
        .optional()
        .db("read track set")
}

/// Recomputes a section's bounds and totals from its segments (after segments were trimmed
/// or deleted); deletes it if no segment with frames is left. Returns whether it remains.
pub(crate) fn refresh_section(conn: &Connection, section_id: i64) -> Result<bool, StoreError> {
    let (n, start, end, bytes, frames): (i64, Option<i64>, Option<i64>, i64, i64) = conn
        .prepare_cached(
            "SELECT COUNT(*), MIN(start_us), MAX(end_us), COALESCE(SUM(bytes), 0), \
             COALESCE(SUM(frames), 0) \
             FROM segments WHERE section_id = ?1",
        )
        .db("prepare section refresh")?
        .query_row([section_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .db("sum a section's segments")?;
    match (n, start, end) {
        (1.., Some(start), Some(end)) => {
            conn.prepare_cached(
                "UPDATE sections SET start_us = ?2, end_us = ?3, bytes = ?4, frames = ?5 \
                 WHERE id = ?1",
            )
            .db("prepare section update")?
            .execute(params![section_id, start, end, bytes, frames])
            .db("update a section")?;
            Ok(true)
        }
        _ => {
            conn.prepare_cached("DELETE FROM sections WHERE id = ?1")
                .db("prepare section delete")?
                .execute([section_id])
                .db("delete a section")?;
            Ok(false)
        }
    }
}
