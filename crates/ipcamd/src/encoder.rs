//! The synthetic camera's encoder as ONVIF changes it (SetVideoEncoderConfiguration): the
//! settings it runs with, what may be set, and the restart with new settings (a new
//! synthetic source handed to the camera's pacing thread, which switches before its next
//! frame; readers keep their session and get the new parameter sets in band, a new
//! DESCRIBE gets them in the SDP).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipcamd_media::fanout::Stream;
use ipcamd_media::pacer::{now_micros, SourceSwitch};
use ipcamd_server::cameras::{Encoder, VideoOptions, VideoSettings};

use ipcamd::config::{CameraConfig, VideoCodec};

/// Picture sizes offered (each rounded as the codec needs), besides the configured one.
const SIZES: [(u32, u32); 6] = [
    (320, 180),
    (640, 360),
    (800, 450),
    (1280, 720),
    (1920, 1080),
    (2560, 1440),
];
const FPS: (u32, u32) = (1, 60);
const BITRATE_KBPS: (u32, u32) = (64, 20_000);
const GOV: (u32, u32) = (1, 600);
/// How long a restart may take until the pacing thread runs the new source.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SyntheticEncoder {
    config: Mutex<CameraConfig>,
    switch: SourceSwitch,
    stream: Arc<Stream>,
    /// The camera's virtual PTZ head and picture adjustments: the restarted source is
    /// seen through them too.
    views: crate::Views,
    /// One restart at a time (a second would supersede the first's source unseen).
    restarting: Mutex<()>,
}

impl SyntheticEncoder {
    pub fn new(
        config: CameraConfig,
        switch: SourceSwitch,
        stream: Arc<Stream>,
        views: crate::Views,
    ) -> SyntheticEncoder {
        SyntheticEncoder {
            config: Mutex::new(config),
            switch,
            stream,
            views,
            restarting: Mutex::new(()),
        }
    }

    fn config(&self) -> CameraConfig {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The picture size the synthetic camera makes of a configured one (H.264: even; MJPEG:
/// whole 16x16 blocks).
fn rounded(video: VideoCodec, (w, h): (u32, u32)) -> (u32, u32) {
    let align = match video {
        VideoCodec::H264 => 2,
        VideoCodec::Mjpeg => 16,
    };
    (w / align * align, h / align * align)
}

/// Keyframe distance in frames, as the synthetic camera rounds it.
pub fn gov_length(fps: u32, keyframe_interval_ms: u32) -> u32 {
    ((u64::from(keyframe_interval_ms) * u64::from(fps) + 500) / 1000).max(1) as u32
}

/// The configuration with `s` applied.
pub fn with_settings(c: &CameraConfig, s: &VideoSettings) -> CameraConfig {
    let mut c = c.clone();
    c.width = s.width;
    c.height = s.height;
    c.fps = s.fps.max(1);
    c.bitrate_kbps = s.bitrate_kbps;
    c.keyframe_interval_ms = (u64::from(s.gov_length) * 1000 / u64::from(c.fps)) as u32;
    c
}

impl Encoder for SyntheticEncoder {
    fn settings(&self) -> VideoSettings {
        let c = self.config();
        let (width, height) = rounded(c.video, (c.width, c.height));
        VideoSettings {
            width,
            height,
            fps: c.fps,
            bitrate_kbps: c.bitrate_kbps,
            gov_length: gov_length(c.fps, c.keyframe_interval_ms),
        }
    }

    fn options(&self) -> VideoOptions {
        let c = self.config();
        let mut resolutions: Vec<(u32, u32)> = SIZES
            .iter()
            .chain(std::iter::once(&(c.width, c.height)))
            .map(|&s| rounded(c.video, s))
            .collect();
        resolutions.sort_unstable();
        resolutions.dedup();
        let (bitrate_kbps, gov_length) = match c.video {
            VideoCodec::H264 => (BITRATE_KBPS, GOV),
            // MJPEG: no rate control, every frame a keyframe.
            VideoCodec::Mjpeg => ((c.bitrate_kbps, c.bitrate_kbps), (1, 1)),
        };
        VideoOptions {
            resolutions,
            fps: FPS,
            bitrate_kbps,
            gov_length,
        }
    }

    fn apply(&self, s: &VideoSettings) -> Result<(), String> {
        let _one = self.restarting.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = with_settings(&self.config(), s);
        let mut factory = crate::source_factory(&cfg, self.views.clone());
        // Opened here, so that a setting the encoder refuses is the caller's fault answer.
        let source = factory(now_micros())
            .map_err(|e| format!("the synthetic camera cannot run with these settings: {e}"))?;
        let started = Instant::now();
        self.switch.replace(source, factory);
        while self.switch.pending() {
            if started.elapsed() > SWITCH_TIMEOUT {
                return Err(format!(
                    "camera {:?}: the new encoder was not taken within {} s",
                    self.stream.name(),
                    SWITCH_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::debug!(camera = %self.stream.name(), switch_ms = started.elapsed().as_millis() as u64, "new encoder running");
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = cfg;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gov_length_round_trips_through_the_keyframe_interval() {
        let c = CameraConfig::default();
        for (fps, gov) in [(25, 30), (3, 7), (30, 1), (1, 600), (60, 120), (7, 13)] {
            let s = VideoSettings {
                width: 640,
                height: 360,
                fps,
                bitrate_kbps: 500,
                gov_length: gov,
            };
            let c = with_settings(&c, &s);
            assert_eq!(gov_length(c.fps, c.keyframe_interval_ms), gov, "{fps} fps");
        }
        assert_eq!(rounded(VideoCodec::Mjpeg, (640, 360)), (640, 352));
    }
}
