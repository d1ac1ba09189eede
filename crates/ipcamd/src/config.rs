//! The configuration file (TOML). Every key has a default, so no file is needed: the
//! default is one synthetic camera `cam1`. The reference is in README.md ("Configuration").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSection,
    pub store: StoreSection,
    pub onvif: OnvifSection,
    #[serde(rename = "camera")]
    pub cameras: Vec<CameraConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerSection::default(),
            store: StoreSection::default(),
            onvif: OnvifSection::default(),
            cameras: vec![CameraConfig::default()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// RTSP listen address.
    pub rtsp_listen: SocketAddr,
    /// HTTP listen address (RTSP-over-HTTP tunnel, index); "" or "off" disables it.
    pub http_listen: String,
    /// First of the UDP port pair media is sent from (RTCP = +1); 0 = first free from 6970.
    pub rtp_port: u16,
    /// Session timeout in seconds, announced in `Session: id;timeout=N`.
    pub session_timeout_s: u64,
    /// Folder for everything the server writes (talk WAV files, recordings).
    pub data_dir: PathBuf,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            rtsp_listen: ([0, 0, 0, 0], 8554).into(),
            http_listen: "0.0.0.0:8080".into(),
            rtp_port: 0,
            session_timeout_s: 60,
            data_dir: PathBuf::from("data"),
        }
    }
}

/// ONVIF services (always on the HTTP port) and WS-Discovery.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnvifSection {
    /// Answer WS-Discovery probes, send Hello at start and Bye at shutdown.
    pub discovery: bool,
    /// WS-Discovery UDP port (3702 by the standard).
    pub discovery_port: u16,
    /// GetDeviceInformation's Manufacturer and Model.
    pub manufacturer: String,
    pub model: String,
}

impl Default for OnvifSection {
    fn default() -> Self {
        OnvifSection {
            discovery: true,
            discovery_port: 3702,
            manufacturer: "ipcamd".into(),
            model: "ipcamd".into(),
        }
    }
}

/// The recording store, under `<data_dir>/recordings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Length of a segment file in seconds (cut at the next keyframe).
    pub segment_s: u64,
    /// Recorded frames are made durable this often; a crash loses at most about this much.
    pub flush_ms: u64,
    /// Delete the oldest footage when all recordings together exceed this many GB.
    pub max_gb: Option<f64>,
    /// Delete footage older than this many days.
    pub max_age_days: Option<f64>,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            segment_s: 60,
            flush_ms: 2000,
            max_gb: None,
            max_age_days: None,
        }
    }
}

impl StoreSection {
    /// Store options with the global limits of [store] and each camera's own.
    pub fn options(&self, cameras: &[CameraConfig]) -> ipcamd_store::StoreOptions {
        let per_camera = cameras
            .iter()
            .filter(|c| c.max_gb.is_some() || c.max_age_days.is_some())
            .map(|c| {
                (
                    c.name.clone(),
                    ipcamd_store::Retention {
                        max_bytes: c.max_gb.map(|g| (g * 1e9) as u64),
                        max_age: c
                            .max_age_days
                            .map(|d| Duration::from_secs_f64(d * 86_400.0)),
                    },
                )
            })
            .collect();
        ipcamd_store::StoreOptions {
            per_camera,
            segment_duration: Duration::from_secs(self.segment_s.max(1)),
            flush_interval: Duration::from_millis(self.flush_ms.max(10)),
            max_bytes: self.max_gb.map(|g| (g * 1e9) as u64),
            max_age: self
                .max_age_days
                .map(|d| Duration::from_secs_f64(d * 86_400.0)),
            ..ipcamd_store::StoreOptions::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Synthetic,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Mjpeg,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CameraConfig {
    /// Name, and the path of its URL: rtsp://HOST:PORT/<name>.
    pub name: String,
    pub source: SourceKind,
    // Synthetic camera.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval_ms: u32,
    pub video: VideoCodec,
    pub jpeg_quality: u8,
    pub audio: bool,
    // File source.
    pub path: Option<PathBuf>,
    /// ONVIF audio backchannel (two-way audio) of this camera.
    pub backchannel: BackchannelSection,
    /// Record this camera continuously into the store.
    pub record: bool,
    /// Keep at most this many GB of this camera's recording (oldest deleted first).
    pub max_gb: Option<f64>,
    /// Delete this camera's footage older than this many days.
    pub max_age_days: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackchannelSection {
    /// Offer the backchannel (a=sendonly section) when a client asks for it.
    pub enabled: bool,
    /// Where talk audio goes: any of "wav" (one file per talk session) and "exec" (raw
    /// s16le mono PCM to a command's standard input).
    pub outputs: Vec<String>,
    /// Folder of the WAV files; relative paths are under [server] data_dir.
    pub wav_dir: PathBuf,
    /// Command for the "exec" output, run with `sh -c`, e.g. "aplay -q -f S16_LE -r 16000".
    pub exec: Option<String>,
    /// Sample rate of the PCM given to the outputs.
    pub output_rate: u32,
    /// "exclusive": the first talker owns the output, others get 453; "mix": mixed.
    pub policy: String,
    /// G.726 bit order: "rfc3551" (what the SDP name G726-xx means) or "aal2".
    pub g726_packing: String,
    /// Jitter buffer depth in milliseconds.
    pub jitter_ms: u64,
}

impl Default for BackchannelSection {
    fn default() -> Self {
        BackchannelSection {
            enabled: true,
            outputs: vec!["wav".into()],
            wav_dir: PathBuf::from("talk"),
            exec: None,
            output_rate: 16000,
            policy: "exclusive".into(),
            g726_packing: "rfc3551".into(),
            jitter_ms: 60,
        }
    }
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            name: "cam1".into(),
            source: SourceKind::Synthetic,
            width: 640,
            height: 360,
            fps: 25,
            bitrate_kbps: 1000,
            keyframe_interval_ms: 2000,
            video: VideoCodec::H264,
            jpeg_quality: 80,
            audio: true,
            path: None,
            backchannel: BackchannelSection::default(),
            record: true,
            max_gb: None,
            max_age_days: None,
        }
    }
}

impl Config {
    /// Reads and checks a configuration file. Errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the configuration: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    text.get(..s.start)
                        .map_or(0, |t| t.matches('\n').count() + 1)
                })
                .unwrap_or(0);
            format!("line {line}: {}", e.message())
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.cameras.iter().enumerate() {
            let at = format!("[[camera]] #{} ({:?})", i + 1, c.name);
            if c.name.is_empty()
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(format!(
                    "{at}: name must be non-empty and use only letters, digits, '-' and '_' (it is a URL path)"
                ));
            }
            if c.name == "replay" {
                return Err(format!(
                    "{at}: name \"replay\" is reserved (replay URLs are /replay/<camera>)"
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(format!("{at}: name is used by another camera"));
            }
            if c.source == SourceKind::File && c.path.is_none() {
                return Err(format!(
                    "{at}: source = \"file\" needs path = \"/some/file.mp4\""
                ));
            }
            if !(16..=4096).contains(&c.width) || !(16..=4096).contains(&c.height) {
                return Err(format!(
                    "{at}: width/height must be 16..4096 (got {}x{})",
                    c.width, c.height
                ));
            }
            if !(1..=120).contains(&c.fps) {
                return Err(format!("{at}: fps must be 1..120 (got {})", c.fps));
            }
            let b = &c.backchannel;
            for o in &b.outputs {
                match o.as_str() {
                    "wav" => {}
                    "exec" if b.exec.is_some() => {}
                    "exec" => return Err(format!("{at}: backchannel output \"exec\" needs exec = \"command\"")),
                    "alsa" | "record" => {
                        return Err(format!(
                            "{at}: backchannel output {o:?} is not available in this build (use \"wav\" or \"exec\")"
                        ))
                    }
                    other => return Err(format!("{at}: unknown backchannel output {other:?} (use \"wav\" or \"exec\")")),
                }
            }
            if !matches!(b.policy.as_str(), "exclusive" | "mix") {
                return Err(format!(
                    "{at}: backchannel policy must be \"exclusive\" or \"mix\" (got {:?})",
                    b.policy
                ));
            }
            if !matches!(b.g726_packing.as_str(), "rfc3551" | "aal2") {
                return Err(format!(
                    "{at}: g726_packing must be \"rfc3551\" or \"aal2\" (got {:?})",
                    b.g726_packing
                ));
            }
            if !(8000..=48000).contains(&b.output_rate) {
                return Err(format!(
                    "{at}: backchannel output_rate must be 8000..48000 (got {})",
                    b.output_rate
                ));
            }
            if !(1..=100).contains(&c.jpeg_quality) {
                return Err(format!(
                    "{at}: jpeg_quality must be 1..100 (got {})",
                    c.jpeg_quality
                ));
            }
        }
        let positive = |v: Option<f64>| v.is_none_or(|x| x.is_finite() && x > 0.0 && x < 1e9);
        if !positive(self.store.max_gb) || !positive(self.store.max_age_days) {
            return Err("[store] max_gb and max_age_days must be positive numbers".into());
        }
        for c in &self.cameras {
            if !positive(c.max_gb) || !positive(c.max_age_days) {
                return Err(format!(
                    "[[camera]] {:?}: max_gb and max_age_days must be positive numbers",
                    c.name
                ));
            }
        }
        if self.server.session_timeout_s == 0 {
            return Err("[server] session_timeout_s must be at least 1".into());
        }
        Ok(())
    }

    pub fn http_listen(&self) -> Result<Option<SocketAddr>, String> {
        match self.server.http_listen.trim() {
            "" | "off" => Ok(None),
            s => s
                .parse()
                .map(Some)
                .map_err(|e| format!("[server] http_listen = {s:?}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.cameras.len(), 1);
        assert_eq!(c.cameras[0].name, "cam1");
        assert_eq!(c.server.rtsp_listen.port(), 8554);
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = Config::parse("[server]\nrtsp_listen = \"0.0.0.0:1\"\nbogus = 1\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = Config::parse("[[camera]]\nname = \"a\"\nfps = \"x\"\n").unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        let e = Config::parse("[[camera]]\nname = \"a/b\"\n").unwrap_err();
        assert!(e.contains("name"), "{e}");
        let e = Config::parse("[store]\nmax_age_days = -1\n").unwrap_err();
        assert!(e.contains("max_age_days"), "{e}");
        let e = Config::parse("[[camera]]\nname = \"f\"\nsource = \"file\"\n").unwrap_err();
        assert!(e.contains("path"), "{e}");
    }

    #[test]
    fn cameras_parse() {
        let c = Config::parse(
            "[[camera]]\nname = \"a\"\nvideo = \"mjpeg\"\naudio = false\n[[camera]]\nname = \"b\"\nsource = \"file\"\npath = \"x.mp4\"\n",
        )
        .unwrap();
        assert_eq!(c.cameras.len(), 2);
        assert_eq!(c.cameras[0].video, VideoCodec::Mjpeg);
        assert!(!c.cameras[0].audio);
        assert_eq!(c.cameras[1].source, SourceKind::File);
    }
}
