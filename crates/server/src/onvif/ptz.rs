//! The PTZ service's view of the virtual PTZ heads ([`ipcamd_media::ptz`]) of the
//! synthetic cameras: the onvif crate's [`PtzHeads`]/[`PtzHead`] over the shared
//! [`PtzHandle`]s the cameras draw with (docs/ptz.md). Each call holds a head's lock for a
//! few arithmetic operations only.

use std::collections::HashMap;

use ipcamd_media::ptz::{PresetError, PtzHandle, PtzState, MAX_PRESETS};
use ipcamd_onvif::services::ptz_service::{PresetRefusal, PtzHead, PtzHeads, PtzPreset, PtzVector};
use ipcamd_proto::time::UnixMicros;

use crate::sync::lock;

/// The heads by camera name.
pub struct Heads<'a>(pub &'a HashMap<String, PtzHandle>);

impl PtzHeads for Heads<'_> {
    fn with_head(&self, camera: &str, f: &mut dyn FnMut(&mut dyn PtzHead)) -> bool {
        let Some(h) = self.0.get(camera) else {
            return false;
        };
        let mut state = lock(h);
        f(&mut Head(&mut state));
        true
    }
}

struct Head<'a>(&'a mut PtzState);

fn vector(v: ipcamd_media::ptz::PtzVector) -> PtzVector {
    PtzVector {
        pan: v.pan,
        tilt: v.tilt,
        zoom: v.zoom,
    }
}

fn refusal(e: PresetError) -> PresetRefusal {
    match e {
        PresetError::NoToken(t) => PresetRefusal::NoToken(t),
        PresetError::NameTaken(n) => PresetRefusal::NameTaken(n),
        PresetError::TooMany => PresetRefusal::TooMany,
    }
}

impl PtzHead for Head<'_> {
    fn position(&self, now: UnixMicros) -> PtzVector {
        vector(self.0.position(now))
    }
    fn moving(&self, now: UnixMicros) -> (bool, bool) {
        let m = self.0.moving(now);
        (m.pan_tilt, m.zoom)
    }
    fn continuous_move(
        &mut self,
        now: UnixMicros,
        pan_tilt: Option<(f64, f64)>,
        zoom: Option<f64>,
        until: Option<UnixMicros>,
    ) {
        self.0.continuous_move(now, pan_tilt, zoom, until)
    }
    fn stop(&mut self, now: UnixMicros, pan_tilt: bool, zoom: bool) {
        self.0.stop(now, pan_tilt, zoom)
    }
    fn absolute_move(&mut self, now: UnixMicros, pan_tilt: Option<(f64, f64)>, zoom: Option<f64>) {
        self.0.absolute_move(now, pan_tilt, zoom)
    }
    fn relative_move(&mut self, now: UnixMicros, pan_tilt: Option<(f64, f64)>, zoom: Option<f64>) {
        self.0.relative_move(now, pan_tilt, zoom)
    }
    fn presets(&self) -> Vec<PtzPreset> {
        self.0
            .presets()
            .iter()
            .map(|p| PtzPreset {
                token: p.token.clone(),
                name: p.name.clone(),
                position: vector(p.position),
            })
            .collect()
    }
    fn set_preset(
        &mut self,
        now: UnixMicros,
        token: Option<&str>,
        name: Option<&str>,
    ) -> Result<String, PresetRefusal> {
        self.0.set_preset(now, token, name).map_err(refusal)
    }
    fn goto_preset(&mut self, now: UnixMicros, token: &str) -> Result<(), PresetRefusal> {
        self.0.goto_preset(now, token).map_err(refusal)
    }
    fn remove_preset(&mut self, token: &str) -> Result<(), PresetRefusal> {
        self.0.remove_preset(token).map_err(refusal)
    }
    fn max_presets(&self) -> usize {
        MAX_PRESETS
    }
}
