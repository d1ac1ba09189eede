//! WHEP (RFC 9725), the HTTP side of [`crate::webrtc`]:
//!
//! - `POST /whep/NAME` (`Content-Type: application/sdp`, the offer) -> `201 Created`, the
//!   answer, `Location: /whep/NAME/ID`; role viewer.
//! - `DELETE /whep/NAME/ID` -> `200`: the peer ends.
//! - `POST /whep/NAME/ID/talk` -> `200` when the camera's backchannel takes this peer's
//!   microphone, `409` when someone else talks (exclusive policy); role operator.
//!   `DELETE /whep/NAME/ID/talk` releases it. (Not part of WHEP: ipcamd's own.)
//! - `PATCH` (trickle ICE) -> `405`: every candidate is in the answer.
//! - `OPTIONS` -> `204` with `Accept-Post: application/sdp`.

use super::message::{HttpRequest, HttpResponse};
use crate::auth::Role;
use crate::net::limits::is_safe_name;
use crate::webrtc::{Refusal, WebRtc};

/// The role a WHEP request needs: talking needs the operator role, watching the viewer's.
pub fn role_needed(path: &str) -> Role {
    if path.ends_with("/talk") {
        Role::Operator
    } else {
        Role::Viewer
    }
}

fn refused(r: Refusal) -> HttpResponse {
    HttpResponse::text(r.status, r.reason, format!("{}\n", r.text))
}

/// Serves `/whep/...` (`path` without the query).
pub async fn route(
    webrtc: Option<&std::sync::Arc<WebRtc>>,
    req: &HttpRequest,
    path: &str,
) -> HttpResponse {
    let Some(webrtc) = webrtc else {
        return HttpResponse::text(
            404,
            "Not Found",
            "WebRTC is off on this server ([webrtc] enabled = false); the live view uses MSE (/live/NAME.mp4)\n",
        );
    };
    let parts: Vec<&str> = path
        .trim_start_matches("/whep/")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = parts.iter().take(2).find(|p| !is_safe_name(p)) {
        let shown: String = bad.chars().take(80).collect();
        return HttpResponse::text(
            400,
            "Bad Request",
            format!("{shown:?} is not a camera name or session id\n"),
        );
    }
    let method = req.head.method.as_str();
    match (method, parts.as_slice()) {
        ("POST", [camera]) => {
            let is_sdp = req
                .head
                .headers
                .get("Content-Type")
                .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/sdp"));
            if !is_sdp {
                return HttpResponse::text(
                    415,
                    "Unsupported Media Type",
                    "a WHEP offer is sent with Content-Type: application/sdp\n",
                );
            }
            let Ok(offer) = std::str::from_utf8(&req.body) else {
                return HttpResponse::text(400, "Bad Request", "the SDP offer is not UTF-8\n");
            };
            match webrtc.create(camera, offer, req.local.ip()) {
                Ok((id, answer)) => {
                    let mut r =
                        HttpResponse::new(201, "Created", "application/sdp", answer.into_bytes());
                    r.headers.push(("Location", format!("/whep/{camera}/{id}")));
                    r
                }
                Err(e) => refused(e),
            }
        }
        ("DELETE", [camera, id]) => match webrtc.end(camera, id).await {
            Ok(()) => HttpResponse::text(200, "OK", "session ended\n"),
            Err(e) => refused(e),
        },
        ("POST", [camera, id, "talk"]) => match webrtc.talk(camera, id).await {
            Ok(()) => HttpResponse::text(200, "OK", "talking: the microphone goes to the camera\n"),
            Err(e) => refused(e),
        },
        ("DELETE", [camera, id, "talk"]) => match webrtc.mute(camera, id).await {
            Ok(()) => HttpResponse::text(200, "OK", "talk ended\n"),
            Err(e) => refused(e),
        },
        ("PATCH", [_, _]) => HttpResponse::text(
            405,
            "Method Not Allowed",
            "no trickle ICE: every candidate is in the answer\n",
        ),
        ("OPTIONS", _) => {
            let mut r = HttpResponse::new(204, "No Content", "text/plain", Vec::new());
            r.headers.push(("Accept-Post", "application/sdp".into()));
            r.headers.push(("Allow", "POST, DELETE, OPTIONS".into()));
            r
        }
        _ => HttpResponse::text(
            405,
            "Method Not Allowed",
            "WHEP: POST /whep/NAME (offer), DELETE /whep/NAME/ID, POST|DELETE /whep/NAME/ID/talk\n",
        ),
    }
}
