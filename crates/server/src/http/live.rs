//! `GET /live/NAME.mp4`: a camera's live H.264 as fragmented MP4 of unknown length, for
//! the web console's MSE fallback (browsers or networks where WebRTC fails) and for any
//! player that reads progressive fMP4 (`ffplay`, `<video>` in browsers that play it
//! directly). The first bytes are the init segment; then one fragment per frame, starting
//! at the current GOP's keyframe ([`ipcamd_store::LiveFmp4`]). The `X-Codecs` header gives
//! the MIME type with codecs for `MediaSource.addSourceBuffer`.
//!
//! Plain HTTP streaming rather than a WebSocket: the same Digest authentication as every
//! other request of the page (browsers send it with `fetch`), no upgrade handshake, and
//! any HTTP client can read it. A client that falls behind by more than [`LIVE_QUEUE`]
//! fragments loses frames up to the next keyframe (counted as a reader skip); one that
//! takes nothing for `[limits] idle_timeout_s` is dropped.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use ipcamd_media::fanout::{Next, Reader};
use ipcamd_proto::codec::CodecParams;
use ipcamd_store::LiveFmp4;
use tokio::sync::mpsc::{self, error::TrySendError};

use super::api::Api;
use super::message::{Body, HttpResponse};
use crate::net::limits::is_safe_name;

/// Fragments queued between the camera and a slow client (about 0.6 s at 25 fps).
pub const LIVE_QUEUE: usize = 16;

/// Serves `/live/NAME.mp4`; `None` for other paths.
pub fn route(api: &Api, path: &str) -> Option<HttpResponse> {
    let name = path.strip_prefix("/live/")?.strip_suffix(".mp4")?;
    if !is_safe_name(name) {
        return Some(HttpResponse::text(
            400,
            "Bad Request",
            "not a camera name (letters, digits, '-' and '_')\n",
        ));
    }
    let Some(cam) = api.cameras.get(name) else {
        return Some(HttpResponse::text(
            404,
            "Not Found",
            format!("no camera named {name:?}\n"),
        ));
    };
    let tracks = cam.stream.tracks();
    let Some(video) = tracks
        .iter()
        .position(|t| matches!(t.codec, CodecParams::H264 { .. }))
    else {
        let codecs: Vec<&str> = tracks.iter().map(|t| t.codec.name()).collect();
        return Some(HttpResponse::text(
            415,
            "Unsupported Media Type",
            format!(
                "the live MP4 carries H.264 only; camera {name:?} sends {codecs:?} (use RTSP)\n"
            ),
        ));
    };
    let (mux, init, mime) = match LiveFmp4::new(&tracks[video]) {
        Ok(x) => x,
        Err(e) => {
            return Some(HttpResponse::text(
                500,
                "Internal Server Error",
                format!("{e}\n"),
            ))
        }
    };
    let (reader, _) = cam.stream.subscribe();
    let (tx, rx) = mpsc::channel(LIVE_QUEUE);
    // The queue is empty: the init segment always fits.
    let _ = tx.try_send(Bytes::from(init));
    tokio::spawn(pump(reader, video, mux, tx));
    let mut r = HttpResponse::new(200, "OK", "video/mp4", Vec::new());
    r.body = Body::Live {
        chunks: rx,
        stall: api.stall,
    };
    r.headers.push(("X-Codecs", mime));
    r.headers.push(("Cache-Control", "no-store".into()));
    Some(r)
}

/// Camera frames to fragments to the client's queue, until the client or the camera goes.
async fn pump(mut reader: Reader, video: usize, mut mux: LiveFmp4, tx: mpsc::Sender<Bytes>) {
    let mut waiting = false;
    let mut gap = false;
    loop {
        let f = match reader.recv().await {
            Next::Frame(f) => f,
            Next::Closed => return,
        };
        if f.track != video || (waiting && !f.keyframe) {
            continue;
        }
        waiting = false;
        let Some(fragment) = mux.push(f.au.pts, f.keyframe, &f.au.data, gap) else {
            continue;
        };
        gap = false;
        match tx.try_send(Bytes::from(fragment)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // Behind: drop up to the next keyframe, as a slow RTSP reader does.
                mux.reset();
                waiting = true;
                gap = true;
                reader
                    .stream()
                    .stats
                    .reader_skips
                    .fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Closed(_)) => return,
        }
    }
}
