//! What ipcamd reads from other devices in XML: WS-Discovery datagrams (the server reads a
//! Probe from anyone on the LAN, port 3702, without credentials; `ipcamd discover` reads the
//! ProbeMatches of any device that answers) and the ONVIF answers of a camera that an
//! `onvif` source or `ipcamd discover` asks (`ipcamd_onvif::client`: faults, time,
//! services, capabilities, device information, profiles, stream URI).
//!
//! Checks: no panic on any input. A datagram that parses as a Probe gets the server's
//! ProbeMatches, which must parse back (`parse_probe_matches`, as `ipcamd discover` reads
//! it) with the Probe's MessageID in `RelatesTo` and the device's own endpoint, scopes,
//! service address and metadata version, whatever the Probe held (escaping).
#![no_main]

use ipcamd_onvif::client;
use ipcamd_onvif::discovery::{self, Announce};
use libfuzzer_sys::fuzz_target;

fn announce() -> Announce {
    Announce {
        endpoint: "urn:uuid:11111111-2222-4333-8444-555555555555".into(),
        xaddrs: "http://10.0.0.2:8080/onvif/device_service".into(),
        scopes: vec![
            "onvif://www.onvif.org/type/video_encoder".into(),
            "onvif://www.onvif.org/name/ipcamd%20lobby".into(),
        ],
        metadata_version: 3,
    }
}

/// A ProbeMatches or Hello the server sends, read back as `ipcamd discover` reads it.
fn check_ours(xml: &str, relates_to: Option<&str>, a: &Announce) {
    let m = match discovery::parse_probe_matches(xml.as_bytes()) {
        Ok(Some(m)) => m,
        other => panic!("our message does not read back as ProbeMatches: {other:?}\n{xml}"),
    };
    assert_eq!(m.relates_to.as_deref(), relates_to, "{xml}");
    let [one] = m.matches.as_slice() else {
        panic!("{} matches in our ProbeMatches\n{xml}", m.matches.len());
    };
    assert_eq!(one.endpoint, a.endpoint);
    assert_eq!(one.scopes, a.scopes);
    assert_eq!(one.xaddrs, vec![a.xaddrs.clone()]);
    assert_eq!(one.metadata_version, Some(a.metadata_version));
}

fuzz_target!(|data: &[u8]| {
    let a = announce();
    // The server's side: any datagram on port 3702.
    if let Ok(Some(probe)) = discovery::parse_probe(data) {
        let _ = discovery::matches(&probe, &a);
        let answer =
            discovery::probe_matches(&probe, &a, "urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a");
        // An empty MessageID reads back as no RelatesTo.
        let relates_to = Some(probe.message_id.as_str()).filter(|m| !m.is_empty());
        check_ours(&answer, relates_to, &a);
    }
    // The client's side: a datagram answering `ipcamd discover`, and a camera's answers.
    if let Ok(Some(m)) = discovery::parse_probe_matches(data) {
        for d in &m.matches {
            let _ = discovery::scope_value(&d.scopes, "name");
            let _ = discovery::scope_value(&d.scopes, "hardware");
        }
    }
    let _ = client::parse_fault(data);
    let _ = client::parse_system_date_and_time(data);
    if let Ok(services) = client::parse_services(data) {
        let _ = client::xaddr_of(&services, "http://www.onvif.org/ver10/media/wsdl");
    }
    let _ = client::parse_capabilities(data);
    let _ = client::parse_device_information(data);
    if let Ok(profiles) = client::parse_profiles(data) {
        for p in &profiles {
            let _ = p.has_video();
        }
    }
    let _ = client::parse_stream_uri(data);
});
