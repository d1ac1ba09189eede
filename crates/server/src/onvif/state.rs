//! What ONVIF clients set and the device keeps across restarts: the state file
//! (`<data_dir>/onvif-state.toml`, README "ONVIF services"). Users are not here: they go to
//! the users file, which is where every user of the server lives.
//!
//! Why a file of its own rather than the configuration: the configuration file is the
//! user's, written by hand, with comments and an order that a program rewriting it would
//! lose; it may also be read-only (`/etc`). The state file is written by the server only,
//! in the data folder (which the server writes anyway), atomically (a temporary file
//! renamed over it), and applied at start on top of the configuration: a value in it wins
//! over the configuration's, until the file (or the value in it) is removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::sync::lock;

/// The file's name in the data folder.
pub const FILE_NAME: &str = "onvif-state.toml";

/// Everything the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceState {
    /// SetHostname: the name GetHostname reports (the host's own name is not changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// SetScopes/AddScopes/RemoveScopes: the configurable scopes (discovery and GetScopes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// WS-Discovery MetadataVersion: 1, raised with every change of the scopes (and kept
    /// across restarts, as WS-Discovery wants it to only grow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_version: Option<u32>,
    /// Per camera: encoder settings, imaging settings and recording job mode.
    #[serde(default, rename = "camera", skip_serializing_if = "BTreeMap::is_empty")]
    pub cameras: BTreeMap<String, CameraState>,
}

/// What was set of one camera.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraState {
    /// SetVideoEncoderConfiguration (synthetic cameras).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoState>,
    /// SetImagingSettings with ForcePersistence (synthetic cameras); settings made without
    /// it are not here (they hold until the server stops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imaging: Option<ImagingState>,
    /// SetRecordingJobMode: false = Idle (not recording), true = Active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoState {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Frames from one keyframe to the next.
    pub gov_length: u32,
}

/// The picture adjustments of a synthetic camera, each 0..100 (50 neutral).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagingState {
    pub brightness: f32,
    pub color_saturation: f32,
    pub contrast: f32,
}

impl DeviceState {
    /// Reads the state file; a missing file is the empty state. Errors name the file and
    /// line.
    pub fn load(path: &Path) -> Result<DeviceState, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(format!(
                    "{}: cannot read the ONVIF state file: {e}",
                    path.display()
                ))
            }
        };
        toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text.get(..s.start).map_or(0, |t| t.matches('\n').count() + 1))
                .unwrap_or(0);
            format!(
                "{}: line {line}: {} (this file is written by ipcamd from ONVIF requests; fix or remove it)",
                path.display(),
                e.message()
            )
        })
    }

    /// The TOML text, with a header saying what the file is.
    pub fn to_toml(&self) -> Result<String, String> {
        let body =
            toml::to_string(self).map_err(|e| format!("cannot write the ONVIF state: {e}"))?;
        Ok(format!(
            "# ipcamd: settings ONVIF clients made (SetVideoEncoderConfiguration,\n\
             # SetImagingSettings with ForcePersistence, SetScopes, SetHostname,\n\
             # SetRecordingJobMode). Written by the server; applied at start on top\n\
             # of the configuration file. Remove a value (or the file) to go back to the\n\
             # configuration's.\n{body}"
        ))
    }

    /// Writes the file atomically (a temporary file, synced, renamed over it). Blocking.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text = self.to_toml()?;
        let fail = |e: std::io::Error| {
            format!("{}: cannot write the ONVIF state file: {e}", path.display())
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("toml.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write as _;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(fail)
    }

    /// The recording job mode of a camera: Active unless set Idle.
    pub fn recording_active(&self, camera: &str) -> bool {
        self.cameras
            .get(camera)
            .and_then(|c| c.recording)
            .unwrap_or(true)
    }
}

/// The state as the running server holds it, and where it is saved.
pub struct StateFile {
    /// None: changes are kept for this run only (no data folder was given).
    path: Option<PathBuf>,
    state: Mutex<DeviceState>,
    /// Saves one at a time, each with the state as it is when it runs.
    save: tokio::sync::Mutex<()>,
}

impl StateFile {
    pub fn new(path: Option<PathBuf>, state: DeviceState) -> StateFile {
        StateFile {
            path,
            state: Mutex::new(state),
            save: tokio::sync::Mutex::new(()),
        }
    }

    pub fn get(&self) -> DeviceState {
        lock(&self.state).clone()
    }

    /// Changes the state and writes the file (off the async workers).
    pub async fn update(&self, f: impl FnOnce(&mut DeviceState)) -> Result<(), String> {
        let _one = self.save.lock().await;
        let snapshot = {
            let mut s = lock(&self.state);
            f(&mut s);
            s.clone()
        };
        let Some(path) = self.path.clone() else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || snapshot.save(&path))
            .await
            .map_err(|e| format!("the state file writer failed: {e}"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut s = DeviceState {
            hostname: Some("box".into()),
            scopes: vec!["onvif://www.onvif.org/location/x".into()],
            ..Default::default()
        };
        s.cameras.insert(
            "cam1".into(),
            CameraState {
                video: Some(VideoState {
                    width: 320,
                    height: 180,
                    fps: 10,
                    bitrate_kbps: 300,
                    gov_length: 20,
                }),
                imaging: Some(ImagingState {
                    brightness: 90.0,
                    color_saturation: 33.5,
                    contrast: 50.0,
                }),
                recording: Some(false),
            },
        );
        let text = s.to_toml().unwrap();
        assert!(text.starts_with("# ipcamd"));
        assert!(
            text.contains("[camera.cam1.imaging]\nbrightness = 90.0\n"),
            "{text}"
        );
        assert_eq!(toml::from_str::<DeviceState>(&text).unwrap(), s);
        assert!(!s.recording_active("cam1"));
        assert!(s.recording_active("cam2"));
        let dir = std::env::temp_dir().join(format!("ipcamd-state-{}", std::process::id()));
        let path = dir.join(FILE_NAME);
        assert_eq!(DeviceState::load(&path).unwrap(), DeviceState::default());
        s.save(&path).unwrap();
        assert_eq!(DeviceState::load(&path).unwrap(), s);
        std::fs::write(&path, "hostname = 3\n").unwrap();
        let e = DeviceState::load(&path).unwrap_err();
        assert!(e.contains("line 1") && e.contains(FILE_NAME), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
