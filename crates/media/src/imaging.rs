//! Picture adjustments of the synthetic camera, as the ONVIF Imaging service sets them
//! (docs/onvif.md "Imaging service"): brightness, colour saturation and contrast, each
//! 0..100 with 50 neutral (the scale cameras report; the specification leaves the unit
//! open).
//!
//! The synthetic camera draws its picture in BT.601 limited range (Y 16..235, Cb/Cr
//! 16..240). The adjustments are two 256-entry lookup tables, built when the settings
//! change:
//!
//! - luma: `Y' = 126 + (Y - 126) x contrast / 50 + (brightness - 50) x 2`, clamped to
//!   16..235 (126 is mid-grey of the limited range; brightness 0 and 100 shift by -100 and
//!   +100 codes, contrast 0 is flat grey and 100 doubles the distance from mid-grey);
//! - chroma: `C' = 128 + (C - 128) x saturation / 50`, clamped to 16..240 (0 is grey, 100
//!   doubles the colour).
//!
//! The synthetic picture is made of flat colours only (bars, box, marker, OSD), so the
//! camera passes its few colours through the tables when the settings change (a few
//! microseconds) and draws with them: the picture is the one a pass of every sample
//! through the tables ([`Tables::apply`]) would give, at no cost per frame. Measured at
//! 1080p (`synthetic.rs`, `imaging_timing`, release build): drawing takes the same time
//! with adjusted colours; a per-sample pass would add about 0.7 ms per frame (some 5 %
//! of the H.264 encoder's time).

use std::sync::{Arc, Mutex};

/// The neutral value of every setting.
pub const NEUTRAL: f32 = 50.0;
/// The range of every setting.
pub const RANGE: (f32, f32) = (0.0, 100.0);

/// Mid-grey of the limited luma range (16..235).
const MID_Y: f32 = 126.0;
/// Luma codes brightness moves per unit away from neutral.
const BRIGHTNESS_STEP: f32 = 2.0;

/// What the picture is adjusted by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adjustments {
    pub brightness: f32,
    pub saturation: f32,
    pub contrast: f32,
}

impl Default for Adjustments {
    fn default() -> Self {
        Adjustments {
            brightness: NEUTRAL,
            saturation: NEUTRAL,
            contrast: NEUTRAL,
        }
    }
}

impl Adjustments {
    /// Whether the picture is left as drawn.
    pub fn is_neutral(&self) -> bool {
        *self == Adjustments::default()
    }

    /// Each value clamped into [`RANGE`]; NaN becomes neutral.
    pub fn clamped(self) -> Adjustments {
        let c = |v: f32| {
            if v.is_nan() {
                NEUTRAL
            } else {
                v.clamp(RANGE.0, RANGE.1)
            }
        };
        Adjustments {
            brightness: c(self.brightness),
            saturation: c(self.saturation),
            contrast: c(self.contrast),
        }
    }
}

/// A camera's adjustments, shared by the ONVIF service (writes) and the picture (reads
/// once per frame).
pub type ImagingHandle = Arc<Mutex<Adjustments>>;

/// Neutral adjustments.
pub fn new_handle() -> ImagingHandle {
    Arc::new(Mutex::new(Adjustments::default()))
}

/// The current adjustments of `handle` (a poisoned lock still holds plain values).
pub fn read(handle: &ImagingHandle) -> Adjustments {
    match handle.lock() {
        Ok(a) => *a,
        Err(poisoned) => *poisoned.into_inner(),
    }
}

/// The lookup tables of one set of adjustments.
#[derive(Debug, Clone)]
pub struct Tables {
    /// The adjustments asked for (the tables use them clamped into [`RANGE`]).
    pub adjustments: Adjustments,
    luma: [u8; 256],
    chroma: [u8; 256],
}

fn clamp_round(v: f32, lo: u8, hi: u8) -> u8 {
    v.round().clamp(f32::from(lo), f32::from(hi)) as u8
}

impl Tables {
    pub fn new(asked: Adjustments) -> Tables {
        let a = asked.clamped();
        let gain = a.contrast / NEUTRAL;
        let offset = (a.brightness - NEUTRAL) * BRIGHTNESS_STEP;
        let sat = a.saturation / NEUTRAL;
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        for i in 0..256 {
            let v = i as f32;
            luma[i] = clamp_round(MID_Y + (v - MID_Y) * gain + offset, 16, 235);
            chroma[i] = clamp_round(128.0 + (v - 128.0) * sat, 16, 240);
        }
        Tables {
            adjustments: asked,
            luma,
            chroma,
        }
    }

    /// One luma sample adjusted.
    pub fn luma(&self, v: u8) -> u8 {
        self.luma[usize::from(v)]
    }

    /// One chroma sample adjusted.
    pub fn chroma(&self, v: u8) -> u8 {
        self.chroma[usize::from(v)]
    }

    /// Adjusts the planes of a 4:2:0 picture in place (nothing to do when neutral).
    pub fn apply(&self, y: &mut [u8], u: &mut [u8], v: &mut [u8]) {
        if self.adjustments.clamped().is_neutral() {
            return;
        }
        for s in y.iter_mut() {
            *s = self.luma[usize::from(*s)];
        }
        for plane in [u, v] {
            for s in plane.iter_mut() {
                *s = self.chroma[usize::from(*s)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adj(brightness: f32, saturation: f32, contrast: f32) -> Adjustments {
        Adjustments {
            brightness,
            saturation,
            contrast,
        }
    }

    #[test]
    fn neutral_changes_nothing() {
        let t = Tables::new(Adjustments::default());
        for v in 16..=235u8 {
            assert_eq!(t.luma[usize::from(v)], v);
        }
        for v in 16..=240u8 {
            assert_eq!(t.chroma[usize::from(v)], v);
        }
        let (mut y, mut u, mut v) = (vec![3u8; 4], vec![250u8; 1], vec![1u8; 1]);
        t.apply(&mut y, &mut u, &mut v);
        assert_eq!((y[0], u[0], v[0]), (3, 250, 1), "neutral: not even clamped");
    }

    #[test]
    fn brightness_contrast_saturation() {
        // Brightness 90: +80 codes, clamped at 235.
        let t = Tables::new(adj(90.0, 50.0, 50.0));
        assert_eq!((t.luma[16], t.luma[126], t.luma[180]), (96, 206, 235));
        // Brightness 10: -80 codes, clamped at 16.
        let t = Tables::new(adj(10.0, 50.0, 50.0));
        assert_eq!((t.luma[16], t.luma[126], t.luma[180]), (16, 46, 100));
        // Contrast 0: flat mid-grey; 100: twice the distance from it.
        let t = Tables::new(adj(50.0, 50.0, 0.0));
        assert!(t.luma[16..=235].iter().all(|&y| y == 126));
        let t = Tables::new(adj(50.0, 50.0, 100.0));
        assert_eq!((t.luma[100], t.luma[126], t.luma[150]), (74, 126, 174));
        // Saturation 0: grey; 100: twice the colour, clamped.
        let t = Tables::new(adj(50.0, 0.0, 50.0));
        assert!(t.chroma[16..=240].iter().all(|&c| c == 128));
        let t = Tables::new(adj(50.0, 100.0, 50.0));
        assert_eq!(
            (t.chroma[100], t.chroma[128], t.chroma[200]),
            (72, 128, 240)
        );
        // Monotonic whatever the settings.
        for a in [
            adj(0.0, 0.0, 0.0),
            adj(100.0, 100.0, 100.0),
            adj(33.3, 71.0, 12.5),
        ] {
            let t = Tables::new(a);
            assert!(t.luma.windows(2).all(|w| w[0] <= w[1]), "{a:?}");
            assert!(t.chroma.windows(2).all(|w| w[0] <= w[1]), "{a:?}");
        }
    }

    #[test]
    fn out_of_range_is_clamped_and_applied() {
        let a = adj(f32::NAN, 150.0, -3.0).clamped();
        assert_eq!(a, adj(50.0, 100.0, 0.0));
        let t = Tables::new(adj(70.0, 0.0, 50.0));
        let (mut y, mut u, mut v) = (vec![16u8, 126, 235], vec![44u8], vec![212u8]);
        t.apply(&mut y, &mut u, &mut v);
        assert_eq!((y, u, v), (vec![56, 166, 235], vec![128], vec![128]));
    }
}
