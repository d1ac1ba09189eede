//! Carries out the changes ONVIF writes ask for (checked by the onvif crate:
//! [`ipcamd_onvif::services::Change`]) and persists them: encoder restarts (the camera's
//! [`crate::cameras::Encoder`]), picture adjustments (the synthetic camera's
//! [`ipcamd_media::imaging::ImagingHandle`]), users (the users file, through the
//! [`Authorizer`]), recording job modes (the recording's mode), scopes and host name;
//! everything but the users, and imaging settings made without ForcePersistence, also goes
//! to the state file ([`super::state`]). A failure is an
//! `env:Receiver/ter:Action` fault saying what went wrong.
//!
//! [`Authorizer`]: crate::auth::Authorizer

use std::time::Instant;

use ipcamd_onvif::services::{Change, UserChange};
use ipcamd_onvif::{Fault, Role};

use super::state::{ImagingState, VideoState};
use super::Onvif;
use crate::auth::Role as UserRole;

fn action(reason: impl Into<String>) -> Fault {
    Fault::receiver("ter:Action", None, reason)
}

fn user_role(r: Role) -> UserRole {
    match r {
        Role::User => UserRole::Viewer,
        Role::Operator => UserRole::Operator,
        Role::Administrator => UserRole::Admin,
    }
}

/// Runs blocking work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, Fault> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| action(format!("the worker failed: {e}")))?
        .map_err(action)
}

/// Carries out `change`; Ok once it took effect and was saved.
pub async fn apply(onvif: &Onvif, change: &Change) -> Result<(), Fault> {
    match change {
        Change::VideoEncoder { camera, settings } => {
            let encoder = onvif
                .cameras
                .get(camera)
                .and_then(|c| c.encoder.clone())
                .ok_or_else(|| action(format!("camera {camera:?} has no encoder to change")))?;
            let s = *settings;
            if encoder.settings() != s {
                let started = Instant::now();
                blocking(move || encoder.apply(&s)).await?;
                tracing::info!(
                    camera = %camera,
                    width = s.width,
                    height = s.height,
                    fps = s.fps,
                    bitrate_kbps = s.bitrate_kbps,
                    gov_length = s.gov_length,
                    restart_ms = started.elapsed().as_millis() as u64,
                    "ONVIF: video encoder restarted with new settings"
                );
            }
            let camera = camera.clone();
            onvif
                .state
                .update(move |st| {
                    st.cameras.entry(camera).or_default().video = Some(VideoState {
                        width: s.width,
                        height: s.height,
                        fps: s.fps,
                        bitrate_kbps: s.bitrate_kbps,
                        gov_length: s.gov_length,
                    })
                })
                .await
                .map_err(action)
        }
        Change::Imaging {
            camera,
            settings,
            persist,
        } => {
            let handle =
                onvif.options.imaging.get(camera).ok_or_else(|| {
                    action(format!("camera {camera:?} has no picture adjustments"))
                })?;
            let s = *settings;
            *crate::sync::lock(handle) = ipcamd_media::imaging::Adjustments {
                brightness: s.brightness,
                saturation: s.color_saturation,
                contrast: s.contrast,
            };
            tracing::info!(
                camera = %camera,
                brightness = s.brightness,
                color_saturation = s.color_saturation,
                contrast = s.contrast,
                persist,
                "ONVIF: imaging settings set"
            );
            if !persist {
                return Ok(());
            }
            let camera = camera.clone();
            onvif
                .state
                .update(move |st| {
                    st.cameras.entry(camera).or_default().imaging = Some(ImagingState {
                        brightness: s.brightness,
                        color_saturation: s.color_saturation,
                        contrast: s.contrast,
                    })
                })
                .await
                .map_err(action)
        }
        Change::CreateUsers(list) | Change::SetUsers(list) => {
            let (auth, list) = (onvif.auth.clone(), list.clone());
            let names: Vec<(String, Role)> =
                list.iter().map(|u| (u.name.clone(), u.role)).collect();
            blocking(move || {
                auth.change_users(|users, realm| {
                    for UserChange {
                        name,
                        password,
                        role,
                    } in &list
                    {
                        match password {
                            // Users made over ONVIF keep their password for WS-Security.
                            Some(p) => users.add(name, user_role(*role), p, realm, true)?,
                            None if users.set_role(name, user_role(*role)) => {}
                            None => return Err(format!("user {name:?} no longer exists")),
                        }
                    }
                    Ok(())
                })
            })
            .await?;
            for (name, role) in names {
                tracing::info!(user = %name, level = role.as_str(), "ONVIF: user saved in the users file");
            }
            Ok(())
        }
        Change::DeleteUsers(names) => {
            let (auth, list) = (onvif.auth.clone(), names.clone());
            blocking(move || {
                auth.change_users(|users, _| {
                    for n in &list {
                        users.remove(n);
                    }
                    // Checked against the users of the request's time; again now.
                    if !users.iter().any(|u| u.role() == UserRole::Admin) {
                        return Err("that would leave no administrator".into());
                    }
                    Ok(())
                })
            })
            .await?;
            tracing::info!(users = ?names, "ONVIF: users deleted from the users file");
            Ok(())
        }
        Change::Scopes(list) => {
            let list = list.clone();
            tracing::info!(scopes = ?list, "ONVIF: configurable scopes set");
            onvif
                .state
                .update(move |st| {
                    st.scopes = list;
                    st.metadata_version = Some(st.metadata_version.unwrap_or(1).saturating_add(1));
                })
                .await
                .map_err(action)?;
            onvif.scopes_changed.notify_one();
            Ok(())
        }
        Change::Hostname(name) => {
            let name = name.clone();
            tracing::info!(hostname = %name, "ONVIF: host name set (reported by GetHostname only)");
            onvif
                .state
                .update(move |st| st.hostname = Some(name))
                .await
                .map_err(action)
        }
        Change::RecordingJobMode { recording, active } => {
            let job = onvif
                .jobs
                .get(recording)
                .ok_or_else(|| action(format!("camera {recording:?} has no recording job")))?;
            job.mode.send_replace(*active);
            tracing::info!(camera = %recording, mode = if *active { "Active" } else { "Idle" }, "ONVIF: recording job mode set");
            let (camera, active) = (recording.clone(), *active);
            onvif
                .state
                .update(move |st| st.cameras.entry(camera).or_default().recording = Some(active))
                .await
                .map_err(action)
        }
    }
}
