//! The built-in synthetic camera: the server's default video source when no real camera
//! or file is configured.
//!
//! It draws a test picture straight into I420 planes (75 % colour bars scrolling sideways,
//! a box bouncing around, and an on-screen display with the UTC capture time of the frame
//! to the millisecond, the camera label and the frame number), encodes it as H.264
//! (openh264, constrained baseline, Annex B) or Motion JPEG (baseline, 4:2:0, standard
//! Huffman tables as RFC 2435 receivers assume), and adds a G.711 µ-law track that beeps
//! at 1 kHz during the first 100 ms of every UTC second. Picture time and beep are both
//! derived from the unit's own capture wallclock, so a viewer can check A/V sync by eye
//! and ear, and a recording can be checked against the OSD.
//!
//! Like every [`Source`], it never sleeps and never reads the clock: frame `n` is captured
//! at `start + n / fps`, audio frame `k` at `start + k * 20 ms`, computed from the index
//! each time (no accumulated rounding drift).
//!
//! With a virtual PTZ head ([`SyntheticCamera::with_ptz`], docs/ptz.md) the scene is seen
//! through it: the bars shift with the pan, and a spring-green square marks the scene's
//! origin, drawn where the head's pan/tilt puts it and as large as its zoom makes it.
//!
//! With picture adjustments ([`SyntheticCamera::with_imaging`], the ONVIF Imaging
//! service: brightness, contrast, colour saturation) the picture is drawn with its colours
//! passed through the lookup tables of [`crate::imaging`], rebuilt when the settings
//! change (no cost per frame).
//!
//! Left out: B-frames, interlace, frame-rate or bitrate changes after construction,
//! noise/texture (the picture is easy to compress on purpose), any audio besides the beep.

use std::fmt::Write as _;

use bytes::Bytes;
use ipcamd_audio::g711::linear_to_ulaw;
use ipcamd_proto::codec::{CodecParams, TrackInfo};
use ipcamd_proto::time::{civil_from_days, UnixMicros};
use openh264::encoder::{
    BitRate, Encoder as H264Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod,
    Profile, RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::font::{self, Plane};
use crate::imaging::{ImagingHandle, Tables};
use crate::ptz::{PtzHandle, PtzVector};
use crate::{AccessUnit, Source, SourceError};

/// The video codec of the synthetic camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntheticVideo {
    /// H.264 constrained baseline, dynamic payload type 96.
    H264,
    /// Motion JPEG (RFC 2435), static payload type 26.
    Mjpeg,
}

/// How the synthetic camera looks and sounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Picture width in pixels. H.264 rounds it down to an even number; MJPEG rounds it
    /// down to a multiple of 16 (whole 4:2:0 MCUs, as RFC 2435 receivers expect).
    pub width: u32,
    /// Picture height in pixels; rounded like `width` (so 360 becomes 352 for MJPEG).
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// H.264 target bitrate in bits per second (ignored for MJPEG).
    pub bitrate_bps: u32,
    /// Distance between H.264 IDR pictures, rounded to whole frames (at least one).
    pub keyframe_interval_ms: u32,
    pub video: SyntheticVideo,
    /// MJPEG quality, 1..=100 (ignored for H.264).
    pub jpeg_quality: u8,
    /// Whether to add the PCMU audio track (track 1).
    pub audio: bool,
    /// Camera name drawn in the picture.
    pub label: String,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            width: 640,
            height: 360,
            fps: 25,
            bitrate_bps: 1_000_000,
            keyframe_interval_ms: 2000,
            video: SyntheticVideo::H264,
            jpeg_quality: 80,
            audio: true,
            label: "cam1".to_string(),
        }
    }
}

/// RTP dynamic payload type of the H.264 track.
const H264_PAYLOAD_TYPE: u8 = 96;
/// Audio: 8 kHz, 20 ms frames.
const AUDIO_RATE: u32 = 8000;
const AUDIO_FRAME_SAMPLES: u64 = 160;
const AUDIO_FRAME_US: i64 = 20_000;
const AUDIO_SAMPLE_US: i64 = 1_000_000 / AUDIO_RATE as i64;
/// The beep sounds during the first `BEEP_US` of every UTC second.
const BEEP_US: i64 = 100_000;
/// Give up after this many frames in a row that the encoder dropped.
const MAX_SKIPPED_FRAMES: u32 = 100;

/// The synthetic camera; see the module doc.
pub struct SyntheticCamera {
    tracks: Vec<TrackInfo>,
    start: UnixMicros,
    fps: u64,
    picture: Picture,
    encoder: VideoEncoder,
    /// Index of the next picture to draw.
    next_frame: u64,
    /// The next video unit, already encoded (so its wallclock can be compared with audio).
    pending_video: Option<AccessUnit>,
    beeper: Option<Beeper>,
    ptz: Option<PtzHandle>,
    /// The picture adjustments, and the tables of the ones last seen.
    imaging: Option<(ImagingHandle, Tables)>,
}

impl SyntheticCamera {
    /// A camera whose frame 0 (and audio frame 0) is captured at `start`.
    ///
    /// For H.264 this encodes the first picture to learn the SPS/PPS for
    /// [`Source::tracks`]; that picture is the first unit [`Source::next_au`] returns.
    pub fn new(cfg: SyntheticConfig, start: UnixMicros) -> Result<Self, SourceError> {
        let bad = |what: String| SourceError::Encoder(format!("synthetic camera: {what}"));
        if cfg.fps == 0 || cfg.fps > 1000 {
            return Err(bad(format!("fps {} is not in 1..=1000", cfg.fps)));
        }
        let (align, max) = match cfg.video {
            SyntheticVideo::H264 => (2, 3840),
            SyntheticVideo::Mjpeg => (16, 65520),
        };
        let width = (cfg.width.min(max) / align * align) as usize;
        let height = (cfg.height.min(max) / align * align) as usize;
        if width < 16 || height < 16 {
            return Err(bad(format!(
                "picture {}x{} is too small (at least 16x16)",
                cfg.width, cfg.height
            )));
        }
        let fps = u64::from(cfg.fps);
        let encoder = match cfg.video {
            SyntheticVideo::H264 => {
                let period = ((u64::from(cfg.keyframe_interval_ms) * fps + 500) / 1000).max(1);
                VideoEncoder::H264(Box::new(H264::new(&cfg, fps, period)?))
            }
            SyntheticVideo::Mjpeg => VideoEncoder::Jpeg(Jpeg::new(cfg.jpeg_quality)),
        };
        let mut camera = SyntheticCamera {
            tracks: Vec::new(),
            start,
            fps,
            picture: Picture::new(width, height, &cfg.label),
            encoder,
            next_frame: 0,
            pending_video: None,
            beeper: cfg.audio.then(|| Beeper::new(start)),
            ptz: None,
            imaging: None,
        };
        camera.fill_pending_video()?;
        let video_track = match &camera.encoder {
            VideoEncoder::H264(h) => TrackInfo::new(
                CodecParams::H264 {
                    sps: Bytes::copy_from_slice(&h.sps),
                    pps: Bytes::copy_from_slice(&h.pps),
                },
                H264_PAYLOAD_TYPE,
            ),
            VideoEncoder::Jpeg(_) => TrackInfo::new(CodecParams::Jpeg, 26),
        };
        camera.tracks.push(video_track);
        if camera.beeper.is_some() {
            camera.tracks.push(TrackInfo::new(
                CodecParams::Pcmu {
                    rate: AUDIO_RATE,
                    channels: 1,
                },
                0,
            ));
        }
        Ok(camera)
    }

    /// Draws the scene through `head` from the next picture on (the picture already
    /// encoded to learn the parameter sets is drawn without it).
    pub fn with_ptz(mut self, head: PtzHandle) -> Self {
        self.ptz = Some(head);
        self
    }

    /// Adjusts every picture by `adjustments` (read once per frame) from the next picture
    /// on.
    pub fn with_imaging(mut self, adjustments: ImagingHandle) -> Self {
        let tables = Tables::new(crate::imaging::read(&adjustments));
        self.picture.adjust(&tables);
        self.imaging = Some((adjustments, tables));
        self
    }

    /// Picture size actually produced (after the rounding described on [`SyntheticConfig`]).
    pub fn picture_size(&self) -> (u32, u32) {
        (self.picture.width as u32, self.picture.height as u32)
    }

    fn frame_wallclock(&self, n: u64) -> UnixMicros {
        self.start + (u128::from(n) * 1_000_000 / u128::from(self.fps)) as i64
    }

    fn frame_pts(&self, n: u64) -> u64 {
        (u128::from(n) * 90_000 / u128::from(self.fps)) as u64
    }

    /// Draws and encodes pictures until the encoder yields a unit (it may drop some).
    fn fill_pending_video(&mut self) -> Result<(), SourceError> {
        let mut skipped = 0;
        while self.pending_video.is_none() {
            let n = self.next_frame;
            self.next_frame += 1;
            let wallclock = self.frame_wallclock(n);
            let view = self.ptz.as_ref().map(|h| match h.lock() {
                Ok(p) => p.position(wallclock),
                Err(poisoned) => poisoned.into_inner().position(wallclock),
            });
            if let Some((handle, tables)) = &mut self.imaging {
                let now = crate::imaging::read(handle);
                if now != tables.adjustments {
                    *tables = Tables::new(now);
                    self.picture.adjust(tables);
                }
            }
            self.picture.draw(n, wallclock, view);
            let ts_ms = (u128::from(n) * 1000 / u128::from(self.fps)) as u64;
            let encoded = match &mut self.encoder {
                VideoEncoder::H264(h) => h.encode(&self.picture, n, ts_ms)?,
                VideoEncoder::Jpeg(j) => Some((j.encode(&self.picture, n)?, true)),
            };
            match encoded {
                Some((data, keyframe)) => {
                    self.pending_video = Some(AccessUnit {
                        track: 0,
                        pts: self.frame_pts(n),
                        wallclock,
                        keyframe,
                        data,
                    });
                }
                None => {
                    skipped += 1;
                    if skipped >= MAX_SKIPPED_FRAMES {
                        return Err(SourceError::Encoder(format!(
                            "synthetic camera: encoder dropped {skipped} frames in a row \
                             (up to frame {n})"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Source for SyntheticCamera {
    fn tracks(&self) -> &[TrackInfo] {
        &self.tracks
    }

    fn next_au(&mut self) -> Result<AccessUnit, SourceError> {
        self.fill_pending_video()?;
        let video_wallclock = match &self.pending_video {
            Some(au) => au.wallclock,
            None => return Err(SourceError::Encoder("synthetic camera: no video".into())),
        };
        if let Some(beeper) = &mut self.beeper {
            if beeper.next_wallclock() < video_wallclock {
                return Ok(beeper.next_frame());
            }
        }
        self.pending_video
            .take()
            .ok_or_else(|| SourceError::Encoder("synthetic camera: no video".into()))
    }
}

/// The OSD time line for a capture wallclock: `2025-11-21 22:04:05.120 UTC` (milliseconds
/// truncated). Proleptic Gregorian calendar, valid for any `i64` instant.
pub fn render_text_for(wallclock: UnixMicros) -> String {
    let mut s = String::with_capacity(32);
    write_time_text(&mut s, wallclock);
    s
}

fn write_time_text(out: &mut String, wallclock: UnixMicros) {
    let secs = wallclock.div_euclid(1_000_000);
    let millis = wallclock.rem_euclid(1_000_000) / 1000;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
}

// ---------------------------------------------------------------------------------------
// The picture
// ---------------------------------------------------------------------------------------

/// 75 % colour bars in BT.601 limited range (Y, Cb, Cr): white, yellow, cyan, green,
/// magenta, red, blue, black.
const BARS: [(u8, u8, u8); 8] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
];
/// Bars move this many pixels per frame (even, so chroma moves by whole samples).
const SCROLL_STEP: usize = 4;
/// The bouncing box: orange, moving this many pixels per frame on each axis.
const BOX_COLOUR: (u8, u8, u8) = (152, 50, 188);
const BOX_SPEED: (usize, usize) = (6, 4);
/// The PTZ marker: spring green (RGB 0, 255, 128), a colour found nowhere else in the
/// picture; a sixth of the picture height at zoom 0.
const MARKER_COLOUR: (u8, u8, u8) = (157, 110, 25);
/// OSD: white text on a near-black box with neutral chroma.
const TEXT_Y: u8 = 235;
const TEXT_BG_Y: u8 = 16;

/// Every value the picture is drawn with: the picture is flat colours only, so adjusting
/// these adjusts the picture exactly as adjusting each of its samples would.
#[derive(Debug, Clone, PartialEq)]
struct Colours {
    /// One row of bars, repeated twice so any scroll offset is one contiguous slice.
    bars_y: Vec<u8>,
    bars_u: Vec<u8>,
    bars_v: Vec<u8>,
    box_colour: (u8, u8, u8),
    marker: (u8, u8, u8),
    text_y: u8,
    text_bg_y: u8,
    /// The chroma of the OSD boxes (neutral).
    grey_c: u8,
}

impl Colours {
    fn new(width: usize) -> Colours {
        let cw = width / 2;
        let mut bars_y = Vec::with_capacity(2 * width);
        for x in 0..2 * width {
            bars_y.push(BARS[(x % width) * BARS.len() / width].0);
        }
        let mut bars_u = Vec::with_capacity(2 * cw);
        let mut bars_v = Vec::with_capacity(2 * cw);
        for cx in 0..2 * cw {
            let bar = BARS[((2 * cx) % width) * BARS.len() / width];
            bars_u.push(bar.1);
            bars_v.push(bar.2);
        }
        Colours {
            bars_y,
            bars_u,
            bars_v,
            box_colour: BOX_COLOUR,
            marker: MARKER_COLOUR,
            text_y: TEXT_Y,
            text_bg_y: TEXT_BG_Y,
            grey_c: 128,
        }
    }

    /// These colours through the adjustments' tables.
    fn through(&self, t: &Tables) -> Colours {
        let (l, c) = (|v: u8| t.luma(v), |v: u8| t.chroma(v));
        let ycc = |(y, u, v): (u8, u8, u8)| (l(y), c(u), c(v));
        Colours {
            bars_y: self.bars_y.iter().map(|&v| l(v)).collect(),
            bars_u: self.bars_u.iter().map(|&v| c(v)).collect(),
            bars_v: self.bars_v.iter().map(|&v| c(v)).collect(),
            box_colour: ycc(self.box_colour),
            marker: ycc(self.marker),
            text_y: l(self.text_y),
            text_bg_y: l(self.text_bg_y),
            grey_c: c(self.grey_c),
        }
    }
}

/// An I420 picture and what is needed to redraw it quickly for every frame.
struct Picture {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    /// The colours as designed, and as drawn (through the picture adjustments).
    colours: Colours,
    shown: Colours,
    label: String,
    time_scale: usize,
    info_scale: usize,
    /// Reused OSD text buffer.
    text: String,
}

impl Picture {
    fn new(width: usize, height: usize, label: &str) -> Picture {
        let cw = width / 2;
        let colours = Colours::new(width);
        // The time line ("YYYY-MM-DD HH:MM:SS.mmm UTC", 27 characters) as big as fits in
        // the width with a margin, and at most a quarter of the height.
        let time_chars = 27;
        let by_width = width.saturating_sub(16) / (time_chars * font::ADVANCE + 2);
        let by_height = height / 4 / (font::GLYPH_HEIGHT + 2);
        let time_scale = by_width.min(by_height).max(1);
        let info_scale = (time_scale * 2 / 3).max(1);
        Picture {
            width,
            height,
            y: vec![0; width * height],
            u: vec![128; cw * (height / 2)],
            v: vec![128; cw * (height / 2)],
            shown: colours.clone(),
            colours,
            label: label.to_string(),
            time_scale,
            info_scale,
            text: String::with_capacity(64),
        }
    }

    /// Draws from now on with the colours adjusted by `t` (a few microseconds: the bars'
    /// row and a handful of colours).
    fn adjust(&mut self, t: &Tables) {
        self.shown = self.colours.through(t);
    }

    /// Draws frame `n`, captured at `wallclock`, seen through a PTZ head at `view`.
    fn draw(&mut self, n: u64, wallclock: UnixMicros, view: Option<PtzVector>) {
        let (w, h) = (self.width, self.height);
        let cw = w / 2;

        // Background: bars scrolling to the left, shifted by the pan.
        let pan_px = view.map_or(0, |v| {
            (v.pan * w as f64 / 2.0 * zoom_factor(v.zoom)).rem_euclid(w as f64) as usize
        });
        let off = ((n % w as u64) as usize * SCROLL_STEP + (pan_px & !1)) % w;
        let coff = off / 2;
        for row in self.y.chunks_exact_mut(w) {
            row.copy_from_slice(&self.shown.bars_y[off..off + w]);
        }
        for row in self.u.chunks_exact_mut(cw) {
            row.copy_from_slice(&self.shown.bars_u[coff..coff + cw]);
        }
        for row in self.v.chunks_exact_mut(cw) {
            row.copy_from_slice(&self.shown.bars_v[coff..coff + cw]);
        }

        // A box bouncing off the edges; even position and size to match chroma samples.
        let side = ((h / 5) & !1).max(2);
        let bx = triangle(n.wrapping_mul(BOX_SPEED.0 as u64), w - side) & !1;
        let by = triangle(n.wrapping_mul(BOX_SPEED.1 as u64), h - side) & !1;
        self.fill(bx, by, side, side, self.shown.box_colour);

        if let Some(v) = view {
            self.marker(v);
        }

        // OSD: capture time, then label and frame number.
        let margin = 8;
        self.text.clear();
        write_time_text(&mut self.text, wallclock);
        let (_, y0, _, h0) = self.label_box(margin, margin, self.time_scale);
        self.text.clear();
        let _ = write!(self.text, "{}  frame {n}", self.label);
        self.label_box(margin, y0 + h0 + self.info_scale, self.info_scale);
    }

    /// The PTZ marker: the scene's origin seen through the head. Pan right (+) moves the
    /// scene, and the marker, left; tilt up (+) moves it down; zoom enlarges it and its
    /// distance from the centre (up to 4x at zoom 1).
    fn marker(&mut self, v: PtzVector) {
        let (w, h) = (self.width as f64, self.height as f64);
        let s = zoom_factor(v.zoom);
        let side = (h / 6.0 * s).max(2.0);
        let cx = w / 2.0 - v.pan * w / 2.0 * s;
        let cy = h / 2.0 + v.tilt * h / 2.0 * s;
        let (x0, y0) = ((cx - side / 2.0).max(0.0), (cy - side / 2.0).max(0.0));
        let (x1, y1) = ((cx + side / 2.0).min(w), (cy + side / 2.0).min(h));
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        let (x, y) = (x0 as usize & !1, y0 as usize & !1);
        let (mw, mh) = ((x1 as usize - x) & !1, (y1 as usize - y) & !1);
        self.fill(x, y, mw, mh, self.shown.marker);
    }

    /// Draws `self.text` as a label and neutralises the chroma under it.
    fn label_box(&mut self, x: usize, y: usize, scale: usize) -> (usize, usize, usize, usize) {
        let mut plane = Plane {
            data: &mut self.y,
            stride: self.width,
            width: self.width,
            height: self.height,
        };
        let (fg, bg, grey) = (self.shown.text_y, self.shown.text_bg_y, self.shown.grey_c);
        let (bx, by, bw, bh) = plane.draw_label(x, y, &self.text, scale, fg, bg);
        let (cx0, cy0) = (bx / 2, by / 2);
        let (cx1, cy1) = ((bx + bw).div_ceil(2), (by + bh).div_ceil(2));
        let cw = self.width / 2;
        let ch = self.height / 2;
        for plane in [&mut self.u, &mut self.v] {
            let mut p = Plane {
                data: plane,
                stride: cw,
                width: cw,
                height: ch,
            };
            p.fill_rect(cx0, cy0, cx1 - cx0, cy1 - cy0, grey);
        }
        (bx, by, bw, bh)
    }

    /// Fills a rectangle (even coordinates) with a Y/Cb/Cr colour, clipped.
    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, (cy, cb, cr): (u8, u8, u8)) {
        let (pw, ph) = (self.width, self.height);
        Plane {
            data: &mut self.y,
            stride: pw,
            width: pw,
            height: ph,
        }
        .fill_rect(x, y, w, h, cy);
        for (plane, value) in [(&mut self.u, cb), (&mut self.v, cr)] {
            Plane {
                data: plane,
                stride: pw / 2,
                width: pw / 2,
                height: ph / 2,
            }
            .fill_rect(x / 2, y / 2, w / 2, h / 2, value);
        }
    }
}

/// How much a PTZ zoom (0..1) magnifies the scene: 1x to 4x.
fn zoom_factor(zoom: f64) -> f64 {
    1.0 + 3.0 * zoom.clamp(0.0, 1.0)
}

/// Position `p` folded into `0..=range` back and forth (a triangle wave).
fn triangle(p: u64, range: usize) -> usize {
    if range == 0 {
        return 0;
    }
    let period = 2 * range as u64;
    let m = (p % period) as usize;
    if m <= range {
        m
    } else {
        2 * range - m
    }
}

impl YUVSource for Picture {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }

    fn y(&self) -> &[u8] {
        &self.y
    }

    fn u(&self) -> &[u8] {
        &self.u
    }

    fn v(&self) -> &[u8] {
        &self.v
    }
}

// ---------------------------------------------------------------------------------------
// Encoders
// ---------------------------------------------------------------------------------------

enum VideoEncoder {
    /// Boxed: openh264's output bookkeeping is several kB.
    H264(Box<H264>),
    Jpeg(Jpeg),
}

/// openh264 with its SPS/PPS remembered, so every IDR unit can carry them in band.
struct H264 {
    encoder: H264Encoder,
    /// IDR every `idr_period` frames, by frame index (forced, so dropped frames or the
    /// encoder's own counting cannot shift it).
    idr_period: u64,
    /// Latest parameter sets seen, without start codes.
    sps: Vec<u8>,
    pps: Vec<u8>,
    /// Reused output buffer.
    out: Vec<u8>,
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

impl H264 {
    fn new(cfg: &SyntheticConfig, fps: u64, idr_period: u64) -> Result<H264, SourceError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(cfg.bitrate_bps.max(10_000)))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(false)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::auto())
            .num_threads(1);
        let encoder = H264Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| SourceError::Encoder(format!("openh264: creating the encoder: {e}")))?;
        Ok(H264 {
            encoder,
            idr_period,
            sps: Vec::new(),
            pps: Vec::new(),
            out: Vec::new(),
        })
    }

    /// Encodes picture `n`; `None` if the encoder dropped it. Returns (Annex B, is IDR).
    // `u64::is_multiple_of` needs Rust 1.87; the workspace's rust-version is 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    fn encode(
        &mut self,
        picture: &Picture,
        n: u64,
        ts_ms: u64,
    ) -> Result<Option<(Bytes, bool)>, SourceError> {
        if n % self.idr_period == 0 {
            self.encoder.force_intra_frame();
        }
        let ts = openh264::Timestamp::from_millis(ts_ms);
        let bitstream = self
            .encoder
            .encode_at(picture, ts)
            .map_err(|e| SourceError::Encoder(format!("openh264: encoding frame {n}: {e}")))?;
        if matches!(bitstream.frame_type(), FrameType::Skip) {
            return Ok(None);
        }
        // First pass: parameter sets (remembered) and whether this is an IDR picture.
        let mut idr = false;
        let mut others = 0;
        let (sps, pps) = (&mut self.sps, &mut self.pps);
        for_each_nal(&bitstream, |nal| match nal.first().map(|b| b & 0x1f) {
            Some(NAL_SPS) => *sps = nal.to_vec(),
            Some(NAL_PPS) => *pps = nal.to_vec(),
            Some(t) => {
                idr |= t == NAL_IDR;
                others += 1;
            }
            None => {}
        });
        if others == 0 {
            return Ok(None);
        }
        if idr && (self.sps.is_empty() || self.pps.is_empty()) {
            return Err(SourceError::Encoder(format!(
                "openh264: IDR frame {n} without SPS/PPS ever seen"
            )));
        }
        // Second pass: IDR units start with SPS and PPS; everything else in order.
        let out = &mut self.out;
        out.clear();
        if idr {
            for ps in [&self.sps, &self.pps] {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(ps);
            }
        }
        for_each_nal(&bitstream, |nal| {
            let t = nal.first().map(|b| b & 0x1f);
            if nal.is_empty() || (idr && matches!(t, Some(NAL_SPS | NAL_PPS))) {
                return;
            }
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(nal);
        });
        Ok(Some((Bytes::copy_from_slice(&self.out), idr)))
    }
}

/// Calls `f` with each NAL unit of an openh264 output, without its start code.
fn for_each_nal(bitstream: &openh264::encoder::EncodedBitStream<'_>, mut f: impl FnMut(&[u8])) {
    for l in 0..bitstream.num_layers() {
        let Some(layer) = bitstream.layer(l) else {
            continue;
        };
        for i in 0..layer.nal_count() {
            if let Some(nal) = layer.nal_unit(i) {
                f(strip_start_code(nal));
            }
        }
    }
}

/// `nal` without a leading 00 00 01 or 00 00 00 01.
fn strip_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|&&b| b == 0).count();
    if zeros >= 2 && nal.get(zeros) == Some(&1) {
        &nal[zeros + 1..]
    } else {
        nal
    }
}

/// jpeg-encoder, set up for RFC 2435: baseline, 4:2:0, standard Huffman tables, no
/// restart markers.
struct Jpeg {
    quality: u8,
    out: Vec<u8>,
}

/// The picture is drawn in limited range (BT.601, as H.264 expects); JFIF is full range.
/// These map Y and Cb/Cr sample values from the one to the other, rounded:
/// Y' = (Y - 16) * 255 / 219, C' = (C - 128) * 255 / 224 + 128.
static FULL_RANGE_Y: [u8; 256] = full_range_lut(16, 219);
static FULL_RANGE_C: [u8; 256] = full_range_lut(128, 224);

const fn full_range_lut(zero: i32, span: i32) -> [u8; 256] {
    let mut lut = [0u8; 256];
    // Chroma is centred on 128 in both ranges; luma starts at 0.
    let base = if zero == 128 { 128 } else { 0 };
    let mut v = 0;
    while v < 256 {
        let x = ((v - zero) * 255 * 2 + span).div_euclid(span * 2) + base;
        lut[v as usize] = if x < 0 {
            0
        } else if x > 255 {
            255
        } else {
            x as u8
        };
        v += 1;
    }
    lut
}

impl Jpeg {
    fn new(quality: u8) -> Jpeg {
        Jpeg {
            quality: quality.clamp(1, 100),
            out: Vec::new(),
        }
    }

    fn encode(&mut self, picture: &Picture, n: u64) -> Result<Bytes, SourceError> {
        let err = |e: String| SourceError::Encoder(format!("jpeg: encoding frame {n}: {e}"));
        let width = u16::try_from(picture.width).map_err(|e| err(e.to_string()))?;
        let height = u16::try_from(picture.height).map_err(|e| err(e.to_string()))?;
        self.out.clear();
        let mut encoder = jpeg_encoder::Encoder::new(&mut self.out, self.quality);
        encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
        encoder.set_progressive(false);
        encoder.set_optimized_huffman_tables(false);
        encoder.set_restart_interval(0);
        encoder
            .encode_image(JpegView {
                picture,
                width,
                height,
            })
            .map_err(|e| err(e.to_string()))?;
        Ok(Bytes::copy_from_slice(&self.out))
    }
}

/// The I420 picture as jpeg-encoder input: full-resolution, full-range rows of Y, Cb, Cr
/// (chroma repeated; the encoder's nearest-sample 2x2 subsampling takes back exactly our
/// samples).
struct JpegView<'a> {
    picture: &'a Picture,
    width: u16,
    height: u16,
}

impl jpeg_encoder::ImageBuffer for JpegView<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let p = self.picture;
        let (w, cw) = (p.width, p.width / 2);
        let y = usize::from(y);
        let row = y * w;
        let crow = (y / 2) * cw;
        let (ly, lc) = (&FULL_RANGE_Y, &FULL_RANGE_C);
        buffers[0].extend(p.y[row..row + w].iter().map(|&s| ly[usize::from(s)]));
        for (dst, src) in [(1, &p.u), (2, &p.v)] {
            buffers[dst].extend(src[crow..crow + cw].iter().flat_map(|&s| {
                let s = lc[usize::from(s)];
                [s, s]
            }));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Audio
// ---------------------------------------------------------------------------------------

/// PCMU frames: silence, except a 1 kHz tone at -10 dBFS (peak) during the first
/// [`BEEP_US`] of every UTC second, decided per sample from its own wallclock.
struct Beeper {
    start: UnixMicros,
    /// Index of the next 20 ms frame.
    next: u64,
    /// One period of the tone (8 samples at 8 kHz), µ-law coded, phase 0 at each second.
    tone: [u8; 8],
    silence: u8,
}

impl Beeper {
    fn new(start: UnixMicros) -> Beeper {
        // 10^(-10/20) * 32767 = 10362; sin(45°) * 10362 = 7327.
        let period: [i16; 8] = [0, 7327, 10362, 7327, 0, -7327, -10362, -7327];
        Beeper {
            start,
            next: 0,
            tone: period.map(linear_to_ulaw),
            silence: linear_to_ulaw(0),
        }
    }

    fn next_wallclock(&self) -> UnixMicros {
        self.start + self.next as i64 * AUDIO_FRAME_US
    }

    fn next_frame(&mut self) -> AccessUnit {
        let wallclock = self.next_wallclock();
        let data: Vec<u8> = (0..AUDIO_FRAME_SAMPLES as i64)
            .map(|i| {
                let in_second = (wallclock + i * AUDIO_SAMPLE_US).rem_euclid(1_000_000);
                if in_second < BEEP_US {
                    self.tone[((in_second / AUDIO_SAMPLE_US) % 8) as usize]
                } else {
                    self.silence
                }
            })
            .collect();
        let au = AccessUnit {
            track: 1,
            pts: self.next * AUDIO_FRAME_SAMPLES,
            wallclock,
            keyframe: true,
            data: Bytes::from(data),
        };
        self.next += 1;
        au
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{decode_nal, BitReader};
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Instant;

    /// 2025-11-21 22:04:05.120 UTC: 1763762645 s = 20413 days + 79445 s; day 20413 is the
    /// 325th day of 2025 (20413 - 20089 for 1970..2024 incl. 14 leap days) = Nov 21;
    /// 79445 s = 22 h 4 min 5 s.
    const T0: UnixMicros = 1_763_762_645_120_000;

    fn nal_types(annex_b: &[u8]) -> Vec<u8> {
        split_annex_b(annex_b).map(|n| n[0] & 0x1f).collect()
    }

    fn split_annex_b(data: &[u8]) -> impl Iterator<Item = &[u8]> {
        let mut starts = Vec::new();
        let mut i = 0;
        while i + 3 <= data.len() {
            if data[i..i + 3] == [0, 0, 1] {
                starts.push(i + 3);
                i += 3;
            } else {
                i += 1;
            }
        }
        let ends: Vec<usize> = starts
            .iter()
            .skip(1)
            .map(|&s| {
                let mut e = s - 3;
                while e > 0 && data[e - 1] == 0 {
                    e -= 1;
                }
                e
            })
            .chain(std::iter::once(data.len()))
            .collect();
        starts.into_iter().zip(ends).map(move |(s, e)| &data[s..e])
    }

    fn units_until(cam: &mut SyntheticCamera, end: UnixMicros) -> Vec<AccessUnit> {
        let mut out = Vec::new();
        loop {
            let au = cam.next_au().expect("next_au");
            if au.wallclock >= end {
                return out;
            }
            out.push(au);
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ipcamd-synth-{}-{name}", std::process::id()))
    }

    /// Runs ffmpeg (must be installed) on `data`; asserts success and no complaints and
    /// returns the number of frames decoded.
    fn ffmpeg_decode(data: &[u8], format: &str, name: &str) -> usize {
        let path = temp_path(name);
        std::fs::write(&path, data).expect("write temp file");
        let output = Command::new("/usr/bin/ffmpeg")
            .args(["-nostdin", "-v", "error", "-f", format, "-i"])
            .arg(&path)
            .args(["-f", "framemd5", "-"])
            .output();
        let _ = std::fs::remove_file(&path);
        let output = output.expect("ffmpeg must be installed at /usr/bin/ffmpeg");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "ffmpeg failed: {stderr}");
        assert!(stderr.trim().is_empty(), "ffmpeg complained: {stderr}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count()
    }

    #[test]
    fn tracks_and_parameter_sets() {
        let mut cam = SyntheticCamera::new(SyntheticConfig::default(), T0).expect("camera");
        let tracks = cam.tracks().to_vec();
        assert_eq!(tracks.len(), 2);
        assert_eq!(tracks[0].payload_type, 96);
        assert_eq!(
            tracks[1],
            TrackInfo {
                codec: CodecParams::Pcmu {
                    rate: 8000,
                    channels: 1
                },
                payload_type: 0
            }
        );
        let CodecParams::H264 { sps, pps } = &tracks[0].codec else {
            panic!("not H.264: {:?}", tracks[0].codec);
        };
        assert_eq!(sps[0] & 0x1f, 7);
        assert_eq!(pps[0] & 0x1f, 8);
        let rbsp = decode_nal(sps).expect("sps rbsp");
        let sps_parsed = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).expect("sps");
        assert_eq!(sps_parsed.pixel_dimensions().expect("dims"), (640, 360));
        assert_eq!(sps[1], 66, "profile_idc: baseline");
        assert_ne!(
            sps[2] & 0x40,
            0,
            "constraint_set1_flag: constrained baseline"
        );

        let first = cam.next_au().expect("first unit");
        assert_eq!(first.track, 0);
        assert!(first.keyframe);
        assert_eq!(first.wallclock, T0);
        assert_eq!(first.pts, 0);
        assert!(first.data.starts_with(&START_CODE));
        assert_eq!(nal_types(&first.data), [7, 8, 5]);
        let nals: Vec<&[u8]> = split_annex_b(&first.data).collect();
        assert_eq!(nals[0], &sps[..]);
        assert_eq!(nals[1], &pps[..]);

        let no_audio = SyntheticCamera::new(
            SyntheticConfig {
                audio: false,
                ..Default::default()
            },
            T0,
        )
        .expect("camera");
        assert_eq!(no_audio.tracks().len(), 1);
    }

    #[test]
    fn three_seconds_of_units() {
        let mut cam = SyntheticCamera::new(SyntheticConfig::default(), T0).expect("camera");
        let units = units_until(&mut cam, T0 + 3_000_000);
        let video: Vec<&AccessUnit> = units.iter().filter(|u| u.track == 0).collect();
        let audio: Vec<&AccessUnit> = units.iter().filter(|u| u.track == 1).collect();
        assert_eq!(video.len(), 75);
        assert_eq!(audio.len(), 150);
        for pair in units.windows(2) {
            assert!(pair[0].wallclock <= pair[1].wallclock, "order");
            if pair[0].wallclock == pair[1].wallclock {
                assert_eq!(pair[0].track, 0, "ties: video first");
            }
        }
        for (n, v) in video.iter().enumerate() {
            assert_eq!(v.pts, n as u64 * 3600);
            assert_eq!(v.wallclock, T0 + n as i64 * 40_000);
            assert!(!v.data.is_empty());
            let types = nal_types(&v.data);
            assert_eq!(v.keyframe, types.contains(&5), "frame {n}: {types:?}");
            if v.keyframe {
                assert_eq!(&types[..3], [7, 8, 5], "frame {n}");
            }
        }
        let keyframes: Vec<usize> = (0..video.len()).filter(|&n| video[n].keyframe).collect();
        assert_eq!(keyframes, [0, 50]);
        for (k, a) in audio.iter().enumerate() {
            assert_eq!(a.pts, k as u64 * 160);
            assert_eq!(a.wallclock, T0 + k as i64 * 20_000);
            assert_eq!(a.data.len(), 160);
            assert!(a.keyframe);
        }
    }

    #[test]
    fn wallclock_has_no_drift_at_odd_rates() {
        let mut cam = SyntheticCamera::new(
            SyntheticConfig {
                fps: 30,
                audio: false,
                width: 160,
                height: 96,
                ..Default::default()
            },
            T0,
        )
        .expect("camera");
        let units: Vec<AccessUnit> = (0..31).map(|_| cam.next_au().expect("unit")).collect();
        assert_eq!(units[1].wallclock, T0 + 33_333);
        assert_eq!(units[2].wallclock, T0 + 66_666);
        assert_eq!(units[29].wallclock, T0 + 966_666);
        assert_eq!(units[29].pts, 87_000);
        assert_eq!(units[30].wallclock, T0 + 1_000_000);
        assert_eq!(units[30].pts, 90_000);
    }

    #[test]
    fn osd_time_text() {
        assert_eq!(render_text_for(T0), "2025-11-21 22:04:05.120 UTC");
        assert_eq!(render_text_for(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(render_text_for(-1), "1969-12-31 23:59:59.999 UTC");
        // 951782400 s = 2000-02-29 00:00:00 (leap day of a century divisible by 400).
        assert_eq!(
            render_text_for(951_782_400_000_000 + 999),
            "2000-02-29 00:00:00.000 UTC"
        );
        // 4102444799 s = 2099-12-31 23:59:59.
        assert_eq!(
            render_text_for(4_102_444_799_999_999),
            "2099-12-31 23:59:59.999 UTC"
        );
    }

    #[test]
    fn beep_in_first_100ms_of_each_second() {
        // Start 720 ms into a second so the beeps are not at the start of the stream.
        let start = 1_763_762_645_720_000;
        let mut cam = SyntheticCamera::new(
            SyntheticConfig {
                width: 160,
                height: 96,
                ..Default::default()
            },
            start,
        )
        .expect("camera");
        let audio: Vec<AccessUnit> = units_until(&mut cam, start + 3_000_000)
            .into_iter()
            .filter(|u| u.track == 1)
            .collect();
        let mut loud = 0;
        for a in &audio {
            let energy: f64 = a
                .data
                .iter()
                .map(|&c| f64::from(ipcamd_audio::g711::ulaw_to_linear(c)).powi(2))
                .sum::<f64>()
                / a.data.len() as f64;
            let rms = energy.sqrt();
            let in_second = a.wallclock.rem_euclid(1_000_000);
            if in_second + 20_000 <= 100_000 {
                // -10 dBFS peak sine: RMS 10362 / sqrt(2) = 7327, within µ-law error.
                assert!((6800.0..7800.0).contains(&rms), "{in_second}: rms {rms}");
                loud += 1;
            } else if in_second >= 100_000 {
                assert_eq!(rms, 0.0, "{in_second}");
            }
        }
        assert_eq!(loud, 3 * 5, "five 20 ms frames of beep per second");
        // Sample-exact edges: the beep starts on the second and stops 100 ms later.
        let at = |t: UnixMicros| {
            let a = audio
                .iter()
                .find(|a| (a.wallclock..a.wallclock + 20_000).contains(&t))
                .expect("frame");
            a.data[((t - a.wallclock) / 125) as usize]
        };
        let second = start - start.rem_euclid(1_000_000) + 1_000_000;
        assert_eq!(at(second - 125), linear_to_ulaw(0));
        assert_ne!(at(second + 250), linear_to_ulaw(0));
        assert_ne!(at(second + 99_875 - 250), linear_to_ulaw(0));
        assert_eq!(at(second + 100_000), linear_to_ulaw(0));
        assert_eq!(at(second + 500_000), linear_to_ulaw(0));
    }

    #[test]
    fn h264_decodes_with_ffmpeg() {
        let mut cam = SyntheticCamera::new(
            SyntheticConfig {
                audio: false,
                ..Default::default()
            },
            T0,
        )
        .expect("camera");
        let mut stream = Vec::new();
        let mut frames = 0;
        for au in units_until(&mut cam, T0 + 2_200_000) {
            stream.extend_from_slice(&au.data);
            frames += 1;
        }
        assert_eq!(frames, 55);
        assert_eq!(ffmpeg_decode(&stream, "h264", "h264.h264"), frames);
    }

    #[test]
    fn mjpeg_decodes_with_ffmpeg_and_is_rfc2435_friendly() {
        let mut cam = SyntheticCamera::new(
            SyntheticConfig {
                video: SyntheticVideo::Mjpeg,
                audio: false,
                ..Default::default()
            },
            T0,
        )
        .expect("camera");
        assert_eq!(cam.tracks()[0], TrackInfo::new(CodecParams::Jpeg, 26));
        assert_eq!(cam.tracks()[0].payload_type, 26);
        assert_eq!(cam.picture_size(), (640, 352));
        let units = units_until(&mut cam, T0 + 400_000);
        assert_eq!(units.len(), 10);
        let mut stream = Vec::new();
        for au in &units {
            assert!(au.keyframe);
            check_jpeg_headers(&au.data);
            stream.extend_from_slice(&au.data);
        }
        assert_eq!(ffmpeg_decode(&stream, "mjpeg", "mjpeg.mjpeg"), units.len());
    }

    /// Baseline (SOF0 only), 640x352, Y 2x2 + Cb/Cr 1x1, standard Huffman tables, no DRI.
    fn check_jpeg_headers(jpeg: &[u8]) {
        const STD_LUMA_DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        const STD_LUMA_AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
        assert_eq!(&jpeg[..2], [0xff, 0xd8], "SOI");
        assert_eq!(&jpeg[jpeg.len() - 2..], [0xff, 0xd9], "EOI");
        let mut i = 2;
        let mut sof0 = false;
        let mut dht_bits = Vec::new();
        loop {
            assert_eq!(jpeg[i], 0xff, "marker at {i}");
            let marker = jpeg[i + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            let seg = &jpeg[i + 4..i + 2 + len];
            match marker {
                0xc0 => {
                    sof0 = true;
                    assert_eq!(seg[0], 8, "precision");
                    assert_eq!(u16::from_be_bytes([seg[1], seg[2]]), 352);
                    assert_eq!(u16::from_be_bytes([seg[3], seg[4]]), 640);
                    assert_eq!(seg[5], 3, "components");
                    assert_eq!(seg[7], 0x22, "Y sampling");
                    assert_eq!(seg[10], 0x11, "Cb sampling");
                    assert_eq!(seg[13], 0x11, "Cr sampling");
                }
                0xc1..=0xcf if marker != 0xc4 && marker != 0xc8 && marker != 0xcc => {
                    panic!("non-baseline SOF {marker:#x}")
                }
                0xdd => panic!("restart interval"),
                0xc4 => {
                    let mut s = seg;
                    while !s.is_empty() {
                        let class_id = s[0];
                        let bits: [u8; 16] = s[1..17].try_into().expect("bits");
                        let n: usize = bits.iter().map(|&b| usize::from(b)).sum();
                        dht_bits.push((class_id, bits));
                        s = &s[17 + n..];
                    }
                }
                0xda => break,
                _ => {}
            }
            i += 2 + len;
        }
        assert!(sof0, "no SOF0");
        assert!(dht_bits.contains(&(0x00, STD_LUMA_DC_BITS)), "{dht_bits:?}");
        assert!(dht_bits.contains(&(0x10, STD_LUMA_AC_BITS)), "{dht_bits:?}");
        assert_eq!(dht_bits.len(), 4);
    }

    #[test]
    fn jpeg_range_mapping() {
        let (y, c) = (&FULL_RANGE_Y, &FULL_RANGE_C);
        assert_eq!((y[0], y[16], y[126], y[235], y[255]), (0, 0, 128, 255, 255));
        assert_eq!((c[0], c[128], c[240], c[255]), (0, 128, 255, 255));
        assert!(c[16] <= 1, "-127.5 rounds to -127");
        assert!(y.windows(2).all(|w| w[0] <= w[1]));
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn rejects_bad_config() {
        for cfg in [
            SyntheticConfig {
                fps: 0,
                ..Default::default()
            },
            SyntheticConfig {
                width: 8,
                ..Default::default()
            },
            SyntheticConfig {
                video: SyntheticVideo::Mjpeg,
                height: 15,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                SyntheticCamera::new(cfg, T0),
                Err(SourceError::Encoder(_))
            ));
        }
    }

    #[test]
    fn picture_moves_and_shows_the_time() {
        let mut p = Picture::new(640, 360, "cam1");
        p.draw(0, T0, None);
        let first = p.y.clone();
        p.draw(1, T0 + 40_000, None);
        assert_ne!(first, p.y, "picture changes from frame to frame");
        // The OSD box (near-black background + white text) sits at the top left.
        let row = 8 + p.time_scale + 2; // inside the first text row of glyphs
        let line = &p.y[row * 640..row * 640 + 640];
        assert!(line[..400].contains(&TEXT_Y));
        assert!(line[..400].contains(&TEXT_BG_Y));
    }

    /// Centroid and pixel count of the PTZ marker (its luma is found nowhere else).
    fn marker_at(p: &Picture) -> (f64, f64, usize) {
        let (mut sx, mut sy, mut n) = (0usize, 0usize, 0usize);
        for (i, &y) in p.y.iter().enumerate() {
            if y == MARKER_COLOUR.0 {
                sx += i % p.width;
                sy += i / p.width;
                n += 1;
            }
        }
        let n1 = n.max(1) as f64;
        (sx as f64 / n1, sy as f64 / n1, n)
    }

    #[test]
    fn ptz_view_moves_and_scales_the_marker() {
        let mut p = Picture::new(640, 360, "cam1");
        p.draw(0, T0, None);
        assert_eq!(marker_at(&p).2, 0, "no marker without a head");
        let view = |pan, tilt, zoom| Some(PtzVector { pan, tilt, zoom });
        p.draw(0, T0, view(0.0, 0.0, 0.0));
        let (x0, y0, n0) = marker_at(&p);
        assert!(
            (x0 - 320.0).abs() < 2.0 && (y0 - 180.0).abs() < 2.0,
            "{x0},{y0}"
        );
        // Pan right by 0.5: the scene moves left by a quarter of the width.
        p.draw(0, T0, view(0.5, 0.0, 0.0));
        let (x, y, _) = marker_at(&p);
        assert!(
            (x - 160.0).abs() < 2.0 && (y - 180.0).abs() < 2.0,
            "{x},{y}"
        );
        // Tilt up: the scene moves down.
        p.draw(0, T0, view(0.0, 0.5, 0.0));
        assert!((marker_at(&p).1 - 270.0).abs() < 2.0);
        // Zoom 1/3: twice as large (four times the pixels), twice as far from the centre.
        p.draw(0, T0, view(0.25, 0.0, 1.0 / 3.0));
        let (x, _, n) = marker_at(&p);
        assert!((x - 160.0).abs() < 2.0, "{x}");
        assert!((n as f64 / n0 as f64 - 4.0).abs() < 0.3, "{n} vs {n0}");
        // Out of view: nothing drawn, no panic.
        p.draw(0, T0, view(1.0, 1.0, 1.0));
        assert_eq!(marker_at(&p).2, 0);
    }

    fn mean(plane: &[u8]) -> f64 {
        plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64
    }

    /// The adjustments reach the encoded picture: brighter, darker, greyer, and back; the
    /// settings are read at every frame.
    #[test]
    fn imaging_adjusts_the_picture() {
        let handle = crate::imaging::new_handle();
        let mut cam = SyntheticCamera::new(
            SyntheticConfig {
                audio: false,
                width: 320,
                height: 180,
                ..Default::default()
            },
            T0,
        )
        .expect("camera")
        .with_imaging(handle.clone());
        let mut frame = |a: crate::imaging::Adjustments| {
            *handle.lock().expect("lock") = a;
            cam.next_au().expect("unit");
            let p = &cam.picture;
            (
                mean(&p.y),
                p.u.iter().map(|&c| (i32::from(c) - 128).abs()).sum::<i32>(),
            )
        };
        let neutral = crate::imaging::Adjustments::default();
        let (y0, c0) = frame(neutral);
        let (y_bright, _) = frame(crate::imaging::Adjustments {
            brightness: 90.0,
            ..neutral
        });
        let (y_dark, _) = frame(crate::imaging::Adjustments {
            brightness: 10.0,
            ..neutral
        });
        let (_, c_grey) = frame(crate::imaging::Adjustments {
            saturation: 0.0,
            ..neutral
        });
        let (y_back, c_back) = frame(neutral);
        assert!(
            y_bright > y0 + 50.0 && y_dark < y0 - 50.0,
            "{y_dark} {y0} {y_bright}"
        );
        assert_eq!(c_grey, 0);
        assert!(
            (y_back - y0).abs() < 2.0 && c_back > 0 && c0 > 0,
            "{y_back} {c_back}"
        );
    }

    /// Drawing with adjusted colours gives the picture a per-sample pass through the
    /// tables would (every drawn value goes through [`Colours`]).
    #[test]
    fn adjusted_colours_equal_adjusted_samples() {
        let view = Some(PtzVector {
            pan: 0.1,
            tilt: -0.2,
            zoom: 0.3,
        });
        for a in [
            crate::imaging::Adjustments {
                brightness: 90.0,
                saturation: 20.0,
                contrast: 70.0,
            },
            crate::imaging::Adjustments {
                brightness: 5.0,
                saturation: 100.0,
                contrast: 0.0,
            },
        ] {
            let t = Tables::new(a);
            let mut plain = Picture::new(320, 180, "cam1");
            plain.draw(7, T0, view);
            t.apply(&mut plain.y, &mut plain.u, &mut plain.v);
            let mut adjusted = Picture::new(320, 180, "cam1");
            adjusted.adjust(&t);
            adjusted.draw(7, T0, view);
            assert!(
                plain.y == adjusted.y && plain.u == adjusted.u && plain.v == adjusted.v,
                "{a:?}"
            );
        }
    }

    /// The cost of the adjustments at 1080p: drawing with adjusted colours (what the
    /// camera does) against drawing as designed, and a per-sample pass through the tables
    /// (what it avoids), next to the encoder; run with
    /// `--release -- --nocapture imaging_timing` for figures.
    #[test]
    fn imaging_timing() {
        const FRAMES: u64 = 20;
        let cfg = SyntheticConfig {
            audio: false,
            width: 1920,
            height: 1080,
            bitrate_bps: 4_000_000,
            ..Default::default()
        };
        let mut cam = SyntheticCamera::new(cfg, T0).expect("camera");
        let tables = Tables::new(crate::imaging::Adjustments {
            brightness: 60.0,
            saturation: 40.0,
            contrast: 55.0,
        });
        let (mut plain, mut adjusted, mut pass, mut encode) = (0u128, 0u128, 0u128, 0u128);
        let mut rebuild = 0u128;
        for n in 1..=FRAMES {
            let wallclock = T0 + n as i64 * 40_000;
            let t0 = Instant::now();
            cam.picture.draw(n, wallclock, None);
            let t1 = Instant::now();
            let p = &mut cam.picture;
            tables.apply(&mut p.y, &mut p.u, &mut p.v);
            let t2 = Instant::now();
            cam.picture.adjust(&tables);
            let t3 = Instant::now();
            cam.picture.draw(n, wallclock, None);
            let t4 = Instant::now();
            if let VideoEncoder::H264(h) = &mut cam.encoder {
                h.encode(&cam.picture, n, n * 40).expect("encode");
            }
            let t5 = Instant::now();
            cam.picture.adjust(&Tables::new(Default::default()));
            plain += (t1 - t0).as_micros();
            pass += (t2 - t1).as_micros();
            adjusted += (t4 - t3).as_micros();
            rebuild += (t3 - t2).as_micros();
            encode += (t5 - t4).as_micros();
        }
        let f = u128::from(FRAMES);
        println!(
            "H264 1920x1080 per frame: draw {} µs, draw with adjusted colours {} µs \
             (a per-sample table pass would add {} µs), encode {} µs; \
             adjusting the colours on a change {} µs",
            plain / f,
            adjusted / f,
            pass / f,
            encode / f,
            rebuild / f,
        );
    }

    /// Draw and encode times per frame; run with `--release -- --nocapture` for figures.
    #[test]
    fn frame_timing() {
        const FRAMES: u64 = 50;
        for video in [SyntheticVideo::H264, SyntheticVideo::Mjpeg] {
            let cfg = SyntheticConfig {
                video,
                audio: false,
                ..Default::default()
            };
            let mut cam = SyntheticCamera::new(cfg, T0).expect("camera");
            let (mut draw, mut encode) = (0u128, 0u128);
            let mut bytes = 0;
            for n in 1..=FRAMES {
                let t0 = Instant::now();
                cam.picture.draw(n, T0 + n as i64 * 40_000, None);
                let t1 = Instant::now();
                let size = match &mut cam.encoder {
                    VideoEncoder::H264(h) => h
                        .encode(&cam.picture, n, n * 40)
                        .expect("encode")
                        .map_or(0, |(d, _)| d.len()),
                    VideoEncoder::Jpeg(j) => j.encode(&cam.picture, n).expect("encode").len(),
                };
                let t2 = Instant::now();
                draw += (t1 - t0).as_micros();
                encode += (t2 - t1).as_micros();
                bytes += size;
            }
            println!(
                "{video:?} {}x{}: draw {} µs/frame, encode {} µs/frame, {} bytes/frame",
                cam.picture.width,
                cam.picture.height,
                draw / u128::from(FRAMES),
                encode / u128::from(FRAMES),
                bytes / FRAMES as usize
            );
        }
    }
}
