//! A virtual PTZ head for the synthetic camera (ONVIF PTZ Service Specification, the
//! generic spaces only): pan and tilt in -1..1, zoom in 0..1, moved by continuous
//! velocities (-1..1 of full speed), absolute and relative moves, and stopped; presets kept
//! in memory (lost at restart). The synthetic picture reads [`PtzState::position`] at each
//! frame's capture time and draws its scene shifted and scaled by it.
//!
//! Sans-IO like every [`crate::Source`]: every call takes `now` (UTC µs); the state
//! integrates the velocity between calls, so a test can drive it faster than real time.
//!
//! Left out: speed arguments of absolute/relative moves (moves are instant), other
//! coordinate spaces than the generic ones, home position, auxiliary commands, tours.

use std::sync::{Arc, Mutex};

use ipcamd_proto::time::UnixMicros;

/// Pan/tilt travel per second at velocity 1 (the whole -1..1 range in 2 s).
pub const PAN_TILT_SPEED: f64 = 1.0;
/// Zoom travel per second at velocity 1 (the whole 0..1 range in 2 s).
pub const ZOOM_SPEED: f64 = 0.5;
/// Presets kept per camera.
pub const MAX_PRESETS: usize = 100;

/// A position or a velocity in the generic spaces.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PtzVector {
    pub pan: f64,
    pub tilt: f64,
    pub zoom: f64,
}

impl PtzVector {
    /// Clamped into the position ranges (pan/tilt -1..1, zoom 0..1); NaN becomes 0.
    pub fn clamped(self) -> PtzVector {
        let c = |v: f64, lo: f64| if v.is_nan() { 0.0 } else { v.clamp(lo, 1.0) };
        PtzVector {
            pan: c(self.pan, -1.0),
            tilt: c(self.tilt, -1.0),
            zoom: c(self.zoom, 0.0),
        }
    }
}

/// A stored preset.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub token: String,
    pub name: String,
    pub position: PtzVector,
}

/// What [`PtzState::set_preset`] may refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetError {
    /// No preset with that token (ONVIF `ter:NoToken`).
    NoToken(String),
    /// Another preset has that name (`ter:PresetExist`).
    NameTaken(String),
    /// [`MAX_PRESETS`] reached (`ter:TooManyPresets`).
    TooMany,
}

/// Whether pan/tilt and zoom are moving (ONVIF `MoveStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Moving {
    pub pan_tilt: bool,
    pub zoom: bool,
}

/// The head of one camera.
#[derive(Debug, Clone, Default)]
pub struct PtzState {
    /// Position at `since`.
    at: PtzVector,
    since: UnixMicros,
    velocity: PtzVector,
    /// A continuous move stops here (its `Timeout`), if given.
    until: Option<UnixMicros>,
    presets: Vec<Preset>,
    next_preset: u32,
    /// When the position last changed by a command (ONVIF `UtcTime` of the status).
    pub updated: UnixMicros,
}

/// A camera's head shared by the ONVIF service and the picture.
pub type PtzHandle = Arc<Mutex<PtzState>>;

/// A new head at the home position (pan 0, tilt 0, zoom 0).
pub fn new_handle() -> PtzHandle {
    Arc::new(Mutex::new(PtzState::default()))
}

impl PtzState {
    /// The position at `now` (a continuous move runs until its timeout or an edge).
    pub fn position(&self, now: UnixMicros) -> PtzVector {
        let end = self.until.map_or(now, |u| u.min(now));
        let secs = (end - self.since).max(0) as f64 / 1e6;
        PtzVector {
            pan: self.at.pan + self.velocity.pan * PAN_TILT_SPEED * secs,
            tilt: self.at.tilt + self.velocity.tilt * PAN_TILT_SPEED * secs,
            zoom: self.at.zoom + self.velocity.zoom * ZOOM_SPEED * secs,
        }
        .clamped()
    }

    /// What is moving at `now`: a non-zero velocity, before its timeout, not at its edge.
    pub fn moving(&self, now: UnixMicros) -> Moving {
        if self.until.is_some_and(|u| now >= u) {
            return Moving::default();
        }
        let p = self.position(now);
        let goes = |v: f64, at: f64, lo: f64| (v > 0.0 && at < 1.0) || (v < 0.0 && at > lo);
        Moving {
            pan_tilt: goes(self.velocity.pan, p.pan, -1.0)
                || goes(self.velocity.tilt, p.tilt, -1.0),
            zoom: goes(self.velocity.zoom, p.zoom, 0.0),
        }
    }

    /// Freezes the position at `now` as the new starting point.
    fn settle(&mut self, now: UnixMicros) {
        self.at = self.position(now);
        self.since = now;
        if self.until.is_some_and(|u| now >= u) {
            self.velocity = PtzVector::default();
            self.until = None;
        }
    }

    /// ContinuousMove: `velocity` (each -1..1) from `now`, until `until` if given. An
    /// axis the request leaves out keeps its current velocity (`None`).
    pub fn continuous_move(
        &mut self,
        now: UnixMicros,
        pan_tilt: Option<(f64, f64)>,
        zoom: Option<f64>,
        until: Option<UnixMicros>,
    ) {
        self.settle(now);
        let c = |v: f64| if v.is_nan() { 0.0 } else { v.clamp(-1.0, 1.0) };
        if let Some((p, t)) = pan_tilt {
            self.velocity.pan = c(p);
            self.velocity.tilt = c(t);
        }
        if let Some(z) = zoom {
            self.velocity.zoom = c(z);
        }
        self.until = until;
        self.updated = now;
    }

    /// Stop: ends the movement of the axes asked for.
    pub fn stop(&mut self, now: UnixMicros, pan_tilt: bool, zoom: bool) {
        self.settle(now);
        if pan_tilt {
            self.velocity.pan = 0.0;
            self.velocity.tilt = 0.0;
        }
        if zoom {
            self.velocity.zoom = 0.0;
        }
        self.updated = now;
    }

    /// AbsoluteMove (instant): the axes given take their new values; the movement stops.
    pub fn absolute_move(
        &mut self,
        now: UnixMicros,
        pan_tilt: Option<(f64, f64)>,
        zoom: Option<f64>,
    ) {
        self.settle(now);
        let mut p = self.at;
        if let Some((pan, tilt)) = pan_tilt {
            p.pan = pan;
            p.tilt = tilt;
        }
        if let Some(z) = zoom {
            p.zoom = z;
        }
        self.at = p.clamped();
        self.velocity = PtzVector::default();
        self.until = None;
        self.updated = now;
    }

    /// RelativeMove (instant): the position moves by the translation given.
    pub fn relative_move(
        &mut self,
        now: UnixMicros,
        pan_tilt: Option<(f64, f64)>,
        zoom: Option<f64>,
    ) {
        let at = self.position(now);
        self.absolute_move(
            now,
            pan_tilt.map(|(p, t)| (at.pan + p, at.tilt + t)),
            zoom.map(|z| at.zoom + z),
        );
    }

    pub fn presets(&self) -> &[Preset] {
        &self.presets
    }

    /// SetPreset: stores the position at `now` under a new token (or the given existing
    /// one); returns the token.
    pub fn set_preset(
        &mut self,
        now: UnixMicros,
        token: Option<&str>,
        name: Option<&str>,
    ) -> Result<String, PresetError> {
        let position = self.position(now);
        if let Some(name) = name {
            if self
                .presets
                .iter()
                .any(|p| p.name == name && Some(p.token.as_str()) != token)
            {
                return Err(PresetError::NameTaken(name.to_owned()));
            }
        }
        if let Some(token) = token {
            let p = self
                .presets
                .iter_mut()
                .find(|p| p.token == token)
                .ok_or_else(|| PresetError::NoToken(token.to_owned()))?;
            p.position = position;
            if let Some(name) = name {
                p.name = name.to_owned();
            }
            return Ok(p.token.clone());
        }
        if self.presets.len() >= MAX_PRESETS {
            return Err(PresetError::TooMany);
        }
        self.next_preset += 1;
        let token = format!("preset{}", self.next_preset);
        self.presets.push(Preset {
            token: token.clone(),
            name: name.map_or_else(|| token.clone(), str::to_owned),
            position,
        });
        Ok(token)
    }

    /// GotoPreset (instant).
    pub fn goto_preset(&mut self, now: UnixMicros, token: &str) -> Result<(), PresetError> {
        let p = self
            .presets
            .iter()
            .find(|p| p.token == token)
            .map(|p| p.position)
            .ok_or_else(|| PresetError::NoToken(token.to_owned()))?;
        self.absolute_move(now, Some((p.pan, p.tilt)), Some(p.zoom));
        Ok(())
    }

    pub fn remove_preset(&mut self, token: &str) -> Result<(), PresetError> {
        let i = self
            .presets
            .iter()
            .position(|p| p.token == token)
            .ok_or_else(|| PresetError::NoToken(token.to_owned()))?;
        self.presets.remove(i);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn continuous_move_integrates_and_stops_at_timeout_and_edges() {
        let mut p = PtzState::default();
        p.continuous_move(0, Some((0.5, -0.25)), Some(1.0), Some(2 * S));
        let at = p.position(S);
        assert!((at.pan - 0.5).abs() < 1e-9 && (at.tilt + 0.25).abs() < 1e-9);
        assert!((at.zoom - 0.5).abs() < 1e-9);
        assert!(p.moving(S).pan_tilt && p.moving(S).zoom);
        // The timeout ends it; the zoom stopped at its edge (1) already.
        let at = p.position(10 * S);
        assert!((at.pan - 1.0).abs() < 1e-9 && (at.tilt + 0.5).abs() < 1e-9);
        assert_eq!(at.zoom, 1.0);
        assert_eq!(p.moving(10 * S), Moving::default());
        // No timeout: runs until the edge, then reports not moving.
        p.continuous_move(10 * S, Some((-1.0, 0.0)), None, None);
        assert!((p.position(11 * S).pan - 0.0).abs() < 1e-9);
        assert_eq!(p.position(20 * S).pan, -1.0);
        assert!(!p.moving(20 * S).pan_tilt);
    }

    #[test]
    fn stop_absolute_relative_and_presets() {
        let mut p = PtzState::default();
        p.continuous_move(0, Some((0.2, 0.0)), Some(0.2), None);
        p.stop(S, true, false);
        assert!((p.position(5 * S).pan - 0.2).abs() < 1e-9, "pan stopped");
        assert!(p.moving(5 * S).zoom, "zoom still moving");
        p.absolute_move(5 * S, Some((0.9, 2.0)), Some(0.3));
        assert_eq!(
            p.position(6 * S),
            PtzVector {
                pan: 0.9,
                tilt: 1.0,
                zoom: 0.3
            }
        );
        p.relative_move(6 * S, Some((-0.4, -0.5)), None);
        let here = p.position(6 * S);
        assert!((here.pan - 0.5).abs() < 1e-9 && (here.tilt - 0.5).abs() < 1e-9);
        let a = p.set_preset(6 * S, None, Some("door")).unwrap();
        assert_eq!(
            p.set_preset(6 * S, None, Some("door")),
            Err(PresetError::NameTaken("door".into()))
        );
        p.absolute_move(7 * S, Some((0.0, 0.0)), Some(0.0));
        p.goto_preset(8 * S, &a).unwrap();
        assert_eq!(p.position(9 * S), here);
        p.remove_preset(&a).unwrap();
        assert_eq!(p.goto_preset(9 * S, &a), Err(PresetError::NoToken(a)));
    }
}
