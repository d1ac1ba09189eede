//! The web console: `GET /` serves one self-contained page (`console.html`, embedded in
//! the binary; no build step, no CDN) that lists the cameras from `/api/stats`, plays them
//! over WebRTC ([`super::whep`]) or MSE ([`super::live`]), talks, and draws each camera's
//! recordings from the playback API ([`super::playback`]). `GET /api/me` tells the page
//! who is logged in (the page shows the talk button to operators and admins only; the
//! server checks the role again on every talk request).
//!
//! Login is the server's Digest authentication: the browser asks for the user and
//! password on the first request and sends them with every request of the page (no
//! cookie, no session state on the server).

use super::api::Api;
use super::message::{HttpRequest, HttpResponse};
use crate::auth::Identity;

const PAGE: &str = include_str!("console.html");

/// The console's routes; `None` for any other path.
pub fn route(api: &Api, req: &HttpRequest, path: &str, who: &Identity) -> Option<HttpResponse> {
    if !matches!(req.head.method.as_str(), "GET" | "HEAD") {
        return None;
    }
    match path {
        "/" | "/console" => {
            let mut r = HttpResponse::new(200, "OK", "text/html; charset=utf-8", PAGE.into());
            r.headers.push(("Cache-Control", "no-cache".into()));
            Some(r)
        }
        "/api/me" => Some(HttpResponse::json(
            200,
            "OK",
            &serde_json::json!({
                "user": who.user,
                "role": who.role.as_str(),
                "webrtc": api.webrtc.is_some(),
            }),
        )),
        _ => None,
    }
}
