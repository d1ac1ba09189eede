//! WS-Discovery (OASIS/Microsoft 2005/04, the version ONVIF Core §7 uses) messages, sans
//! IO. The device side: parse a Probe (its MessageID, Types and Scopes), decide whether
//! this device matches, and build ProbeMatches, Hello and Bye. The client side (`ipcamd
//! discover`): build a Probe for `dn:NetworkVideoTransmitter` and parse the ProbeMatches
//! that answer it ([`probe_message`], [`parse_probe_matches`], [`scope_value`]). SOAP 1.2
//! over UDP (SOAP-over-UDP 2004): each message is built once; retransmission
//! (SOAP-over-UDP §3.4) is left to the caller's loop.
//!
//! Left out: Resolve (XAddrs are always in Hello and ProbeMatches, so clients do not need
//! it), discovery proxies, and the client reading Hello and Bye.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::ns;
use crate::xml::escape;

/// The WS-Discovery multicast group and port.
pub const MULTICAST_V4: [u8; 4] = [239, 255, 255, 250];
pub const PORT: u16 = 3702;

/// What the device announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Stable `urn:uuid:...` endpoint reference address of the device.
    pub endpoint: String,
    /// Space-separated device service URLs.
    pub xaddrs: String,
    /// Scopes (`onvif://www.onvif.org/...`).
    pub scopes: Vec<String>,
    /// Bumped when the metadata changes (we count starts).
    pub metadata_version: u32,
}

/// A parsed Probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    pub message_id: String,
    /// QNames resolved to (namespace, local name).
    pub types: Vec<(String, String)>,
    pub scopes: Vec<String>,
    /// `d:Scopes MatchBy`, if given.
    pub match_by: Option<String>,
}

/// Parses a WS-Discovery message; `Ok(None)` if it is well formed but not a Probe (Hello,
/// Bye, ProbeMatches of other devices: ignored).
pub fn parse_probe(datagram: &[u8]) -> Result<Option<Probe>, String> {
    let mut reader = NsReader::from_reader(datagram);
    // Not trimmed per text event: quick-xml splits text at entity references, and trimming
    // each piece would drop the spaces around `&amp;`; values are trimmed whole below.
    reader.config_mut().trim_text(false);
    let mut probe = Probe::default();
    let mut is_probe = false;
    let mut current: Option<&'static str> = None;
    let mut text = String::new();
    let mut buf = Vec::new();
    // Namespace bindings at the Types element, to resolve its QName list.
    let mut types_raw = String::new();
    let mut depth = 0usize;
    loop {
        let (res, ev) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| format!("malformed XML: {e}"))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let nsuri = match res {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    _ => String::new(),
                };
                let local = e.local_name();
                current = match (nsuri.as_str(), local.as_ref()) {
                    (ns::WSD, b"Probe") => {
                        is_probe = true;
                        None
                    }
                    (ns::WSA, b"MessageID") => Some("MessageID"),
                    (ns::WSD, b"Types") => Some("Types"),
                    (ns::WSD, b"Scopes") => {
                        for a in e.attributes().flatten() {
                            if a.key.local_name().as_ref() == b"MatchBy" {
                                probe.match_by =
                                    Some(String::from_utf8_lossy(&a.value).into_owned());
                            }
                        }
                        Some("Scopes")
                    }
                    _ => None,
                };
                text.clear();
                if !empty {
                    depth += 1;
                    if depth > 32 {
                        return Err("elements nested deeper than 32".into());
                    }
                }
            }
            Event::Text(t) => {
                text.push_str(&t.decode().map_err(|e| format!("text is not UTF-8: {e}"))?);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => match crate::xml::reference_char(&r) {
                Some(c) => text.push(c),
                None => {
                    return Err(format!(
                        "unknown entity reference &{};",
                        String::from_utf8_lossy(&r)
                    ))
                }
            },
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                match current.take() {
                    Some("MessageID") => probe.message_id = text.trim().to_owned(),
                    Some("Types") => {
                        types_raw = text.clone();
                        for q in text.split_whitespace() {
                            let local = q.split_once(':').map_or(q, |(_, l)| l);
                            let (r, _) = reader
                                .resolver()
                                .resolve(quick_xml::name::QName(q.as_bytes()), true);
                            let nsuri = match r {
                                ResolveResult::Bound(n) => {
                                    String::from_utf8_lossy(n.as_ref()).into_owned()
                                }
                                _ => String::new(),
                            };
                            probe.types.push((nsuri, local.to_owned()));
                        }
                    }
                    Some("Scopes") => {
                        probe.scopes = text.split_whitespace().map(str::to_owned).collect()
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            Event::DocType(_) => return Err("DOCTYPE not allowed".into()),
            _ => {}
        }
        buf.clear();
    }
    let _ = types_raw;
    Ok(is_probe.then_some(probe))
}

/// Whether a Probe asks for this device: no Types or a type we are
/// (`dn:NetworkVideoTransmitter`, `tds:Device`), and every asked scope matches one of
/// ours (RFC 3986 prefix match by path segments, the default `MatchBy`).
pub fn matches(probe: &Probe, ours: &Announce) -> bool {
    let type_ok = probe.types.is_empty()
        || probe.types.iter().any(|(n, l)| {
            (n == ns::DN && l == "NetworkVideoTransmitter")
                || (n == ns::TDS && l == "Device")
                // Clients that forget to bind the prefix: match the local name.
                || (n.is_empty() && (l == "NetworkVideoTransmitter" || l == "Device"))
        });
    let scope_ok = probe.scopes.iter().all(|want| {
        ours.scopes.iter().any(|have| {
            have == want
                || (have.starts_with(want.as_str())
                    && (want.ends_with('/') || have.as_bytes().get(want.len()) == Some(&b'/')))
        })
    });
    let rule_ok = match probe.match_by.as_deref() {
        None | Some("") => true,
        Some(r) => {
            r == "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986"
                || r == "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"
        }
    };
    type_ok && scope_ok && rule_ok
}

fn envelope(
    action: &str,
    message_id: &str,
    relates_to: Option<&str>,
    to: &str,
    body: &str,
    app_seq: Option<u32>,
) -> String {
    let relates = relates_to
        .map(|r| format!("<wsa:RelatesTo>{}</wsa:RelatesTo>", escape(r)))
        .unwrap_or_default();
    // Devices' messages carry an AppSequence; a client's Probe has none.
    let app_seq = app_seq
        .map(|n| format!("<d:AppSequence InstanceId=\"{n}\" MessageNumber=\"1\"/>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope xmlns:env=\"{}\" xmlns:wsa=\"{}\" xmlns:d=\"{}\" xmlns:dn=\"{}\" xmlns:tds=\"{}\"><env:Header><wsa:MessageID>{}</wsa:MessageID>{relates}<wsa:To>{to}</wsa:To><wsa:Action>{}/{action}</wsa:Action>{app_seq}</env:Header><env:Body>{body}</env:Body></env:Envelope>\n",
        ns::SOAP12,
        ns::WSA,
        ns::WSD,
        ns::DN,
        ns::TDS,
        escape(message_id),
        ns::WSD,
    )
}

fn endpoint_meta(a: &Announce) -> String {
    format!(
        "<wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference><d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types><d:Scopes>{}</d:Scopes><d:XAddrs>{}</d:XAddrs><d:MetadataVersion>{}</d:MetadataVersion>",
        escape(&a.endpoint),
        escape(&a.scopes.join(" ")),
        escape(&a.xaddrs),
        a.metadata_version
    )
}

const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
const DISCOVERY_URN: &str = "urn:schemas-xmlsoap-org:ws:2005:04:discovery";

/// The unicast answer to `probe`. `message_id` is a fresh `urn:uuid:...`.
pub fn probe_matches(probe: &Probe, a: &Announce, message_id: &str) -> String {
    envelope(
        "ProbeMatches",
        message_id,
        Some(&probe.message_id),
        ANONYMOUS,
        &format!(
            "<d:ProbeMatches><d:ProbeMatch>{}</d:ProbeMatch></d:ProbeMatches>",
            endpoint_meta(a)
        ),
        Some(a.metadata_version),
    )
}

/// Multicast at start.
pub fn hello(a: &Announce, message_id: &str) -> String {
    envelope(
        "Hello",
        message_id,
        None,
        DISCOVERY_URN,
        &format!("<d:Hello>{}</d:Hello>", endpoint_meta(a)),
        Some(a.metadata_version),
    )
}

/// Multicast at shutdown.
pub fn bye(a: &Announce, message_id: &str) -> String {
    envelope(
        "Bye",
        message_id,
        None,
        DISCOVERY_URN,
        &format!(
            "<d:Bye><wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference></d:Bye>",
            escape(&a.endpoint)
        ),
        Some(a.metadata_version),
    )
}

/// The Probe a client sends (multicast to [`MULTICAST_V4`]:[`PORT`], or unicast to a
/// device) for ONVIF devices: Types `dn:NetworkVideoTransmitter`, no scopes.
/// `message_id` is a fresh `urn:uuid:...`; the ProbeMatches name it in `RelatesTo`.
pub fn probe_message(message_id: &str) -> String {
    envelope(
        "Probe",
        message_id,
        None,
        DISCOVERY_URN,
        "<d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe>",
        None,
    )
}

/// One device of a ProbeMatches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeMatch {
    /// The device's stable endpoint reference address (`urn:uuid:...`).
    pub endpoint: String,
    /// QNames resolved to (namespace, local name).
    pub types: Vec<(String, String)>,
    pub scopes: Vec<String>,
    /// Device service URLs.
    pub xaddrs: Vec<String>,
    pub metadata_version: Option<u32>,
}

/// A parsed ProbeMatches message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeMatches {
    /// The MessageID of the Probe this answers, if given.
    pub relates_to: Option<String>,
    pub matches: Vec<ProbeMatch>,
}

/// Parses a WS-Discovery message as ProbeMatches; `Ok(None)` if it is well formed but
/// something else (a Probe of another client, Hello, Bye).
pub fn parse_probe_matches(datagram: &[u8]) -> Result<Option<ProbeMatches>, String> {
    let root = crate::xml::parse(datagram, &["Types"])?;
    if root.name != "Envelope" || (root.namespace != ns::SOAP12 && root.namespace != ns::SOAP11) {
        return Err(format!(
            "the document element is {{{}}}{}, not a SOAP Envelope",
            root.namespace, root.name
        ));
    }
    let Some(body) = root.child("Body") else {
        return Err("no SOAP Body".into());
    };
    let Some(pm) = body
        .children
        .iter()
        .find(|e| e.name == "ProbeMatches" && e.namespace == ns::WSD)
    else {
        return Ok(None);
    };
    let relates_to = root
        .child("Header")
        .and_then(|h| h.child("RelatesTo"))
        .map(|r| r.text.clone())
        .filter(|r| !r.is_empty());
    let matches = pm
        .children_named("ProbeMatch")
        .map(|m| ProbeMatch {
            endpoint: m
                .text_at(&["EndpointReference", "Address"])
                .unwrap_or_default()
                .to_owned(),
            types: m
                .child("Types")
                .map(|t| t.qnames.clone())
                .unwrap_or_default(),
            scopes: words(m.text_at(&["Scopes"])),
            xaddrs: words(m.text_at(&["XAddrs"])),
            metadata_version: m.text_at(&["MetadataVersion"]).and_then(|v| v.parse().ok()),
        })
        .collect();
    Ok(Some(ProbeMatches {
        relates_to,
        matches,
    }))
}

fn words(s: Option<&str>) -> Vec<String> {
    s.map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The value of an ONVIF scope `onvif://www.onvif.org/<key>/<value>` (key compared
/// without case: `name`, `hardware`, `location`), percent-decoded; the first such scope.
pub fn scope_value(scopes: &[String], key: &str) -> Option<String> {
    scopes.iter().find_map(|s| {
        let rest = s.strip_prefix("onvif://www.onvif.org/")?;
        let (k, v) = rest.split_once('/')?;
        (k.eq_ignore_ascii_case(key) && !v.is_empty()).then(|| percent_decode(v))
    })
}

/// RFC 3986 percent-decoding; a malformed escape is kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `urn:uuid:` in RFC 4122 version-4 layout from 16 random bytes (the caller draws them).
pub fn urn_uuid(r: [u8; 16]) -> String {
    let mut b = r;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What onvif-util (libonvif) and python WSDiscovery send.
    const PROBE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>uuid:0a6dc791-2be6-4991-9af1-454778a1917a</a:MessageID><a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body><Probe xmlns="http://schemas.xmlsoap.org/ws/2005/04/discovery"><d:Types xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dp0="http://www.onvif.org/ver10/network/wsdl">dp0:NetworkVideoTransmitter</d:Types></Probe></s:Body></s:Envelope>"#;

    fn ours() -> Announce {
        Announce {
            endpoint: "urn:uuid:11111111-2222-4333-8444-555555555555".into(),
            xaddrs: "http://10.0.0.2:8080/onvif/device_service".into(),
            scopes: vec![
                "onvif://www.onvif.org/type/video_encoder".into(),
                "onvif://www.onvif.org/name/ipcamd".into(),
                "onvif://www.onvif.org/Profile/Streaming".into(),
            ],
            metadata_version: 1,
        }
    }

    #[test]
    fn probe_with_type_matches() {
        let p = parse_probe(PROBE.as_bytes()).unwrap().unwrap();
        assert_eq!(p.message_id, "uuid:0a6dc791-2be6-4991-9af1-454778a1917a");
        assert_eq!(
            p.types,
            vec![(ns::DN.to_owned(), "NetworkVideoTransmitter".to_owned())]
        );
        assert!(matches(&p, &ours()));
        let m = probe_matches(&p, &ours(), "urn:uuid:x");
        assert!(
            m.contains("<wsa:RelatesTo>uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:RelatesTo>")
        );
        assert!(m.contains("http://10.0.0.2:8080/onvif/device_service"));
        assert!(m.contains("discovery/ProbeMatches"));
    }

    /// Escaped characters in a value are kept, with the spaces around them (quick-xml
    /// reports `&amp;` as an event of its own).
    #[test]
    fn references_in_values_are_resolved() {
        let probe = PROBE
            .replace(
                "<a:MessageID>uuid:0a6dc791",
                "<a:MessageID> uuid:a&amp;b &#x41;",
            )
            .replace(
                "</d:Types>",
                "</d:Types><Scopes>onvif://www.onvif.org/name/a&amp;b onvif://x/y</Scopes>",
            );
        let p = parse_probe(probe.as_bytes()).unwrap().unwrap();
        assert_eq!(p.message_id, "uuid:a&b A-2be6-4991-9af1-454778a1917a");
        assert_eq!(
            p.scopes,
            vec!["onvif://www.onvif.org/name/a&b", "onvif://x/y"]
        );
        let bad = PROBE.replace("<a:MessageID>uuid:", "<a:MessageID>&nope;");
        assert!(parse_probe(bad.as_bytes()).is_err());
    }

    #[test]
    fn scopes_and_types_filter() {
        let mut p = Probe::default();
        assert!(matches(&p, &ours()));
        p.scopes = vec!["onvif://www.onvif.org/name".into()];
        assert!(matches(&p, &ours()));
        p.scopes = vec!["onvif://www.onvif.org/nam".into()];
        assert!(!matches(&p, &ours()));
        p.scopes = vec!["onvif://www.onvif.org/location/mars".into()];
        assert!(!matches(&p, &ours()));
        let p = Probe {
            types: vec![("http://example.com/printer".into(), "Printer".into())],
            ..Probe::default()
        };
        assert!(!matches(&p, &ours()));
    }

    #[test]
    fn other_messages_and_garbage() {
        let h = hello(&ours(), "urn:uuid:y");
        assert_eq!(parse_probe(h.as_bytes()), Ok(None));
        assert!(
            parse_probe(b"\x00\x01garbage<").is_err()
                || parse_probe(b"\x00\x01garbage<") == Ok(None)
        );
        assert!(bye(&ours(), "urn:uuid:z").contains("<d:Bye>"));
    }

    /// Our Probe is what a device (ours) accepts, and our ProbeMatches answer reads back.
    #[test]
    fn client_probe_and_our_probe_matches() {
        let probe = probe_message("urn:uuid:aaaa");
        let p = parse_probe(probe.as_bytes()).unwrap().unwrap();
        assert_eq!(p.message_id, "urn:uuid:aaaa");
        assert_eq!(
            p.types,
            [(ns::DN.to_owned(), "NetworkVideoTransmitter".to_owned())]
        );
        assert!(!probe.contains("AppSequence"));
        assert!(probe.contains("discovery/Probe</wsa:Action>"));
        let answer = probe_matches(&p, &ours(), "urn:uuid:bbbb");
        let m = parse_probe_matches(answer.as_bytes()).unwrap().unwrap();
        assert_eq!(m.relates_to.as_deref(), Some("urn:uuid:aaaa"));
        assert_eq!(m.matches.len(), 1);
        let d = &m.matches[0];
        assert_eq!(d.endpoint, ours().endpoint);
        assert_eq!(d.xaddrs, ["http://10.0.0.2:8080/onvif/device_service"]);
        assert_eq!(d.scopes, ours().scopes);
        assert_eq!(d.metadata_version, Some(1));
        assert!(d
            .types
            .contains(&(ns::DN.to_owned(), "NetworkVideoTransmitter".to_owned())));
        assert!(d.types.contains(&(ns::TDS.to_owned(), "Device".to_owned())));
        assert_eq!(scope_value(&d.scopes, "name").as_deref(), Some("ipcamd"));
        // Other messages are not ProbeMatches.
        assert_eq!(parse_probe_matches(probe.as_bytes()), Ok(None));
        assert_eq!(
            parse_probe_matches(hello(&ours(), "urn:uuid:y").as_bytes()),
            Ok(None)
        );
        assert!(parse_probe_matches(b"\x00garbage").is_err());
    }

    /// A camera's answer (SOAP-ENV/wsadis/tdn prefixes, several XAddrs, percent-encoded
    /// scopes), in the style of gSOAP-based firmware.
    #[test]
    fn camera_probe_matches() {
        let x = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:SOAP-ENC="http://www.w3.org/2003/05/soap-encoding" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsdd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:tdn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
 <SOAP-ENV:Header>
  <wsa:MessageID>uuid:2419d68a-2dd2-21b2-a205-ec3e7a9a7e4c</wsa:MessageID>
  <wsa:RelatesTo>urn:uuid:1d2f4a66-5b0e-4c1e-9f6a-3c2b1a0f9e8d</wsa:RelatesTo>
  <wsa:To SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>
  <wsa:Action SOAP-ENV:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action>
  <wsdd:AppSequence InstanceId="1" MessageNumber="9"></wsdd:AppSequence>
 </SOAP-ENV:Header>
 <SOAP-ENV:Body>
  <wsdd:ProbeMatches>
   <wsdd:ProbeMatch>
    <wsa:EndpointReference><wsa:Address>urn:uuid:2419d68a-2dd2-21b2-a205-ec3e7a9a7e4c</wsa:Address></wsa:EndpointReference>
    <wsdd:Types>tdn:NetworkVideoTransmitter tds:Device</wsdd:Types>
    <wsdd:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/Profile/Streaming onvif://www.onvif.org/Name/Front%20Door onvif://www.onvif.org/hardware/DS-2CD2042WD-I onvif://www.onvif.org/location/city/hangzhou</wsdd:Scopes>
    <wsdd:XAddrs>http://192.168.1.64/onvif/device_service http://[fe80::4619:b6ff:fe3a:1f2e]/onvif/device_service</wsdd:XAddrs>
    <wsdd:MetadataVersion>10</wsdd:MetadataVersion>
   </wsdd:ProbeMatch>
  </wsdd:ProbeMatches>
 </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"#;
        let m = parse_probe_matches(x.as_bytes()).unwrap().unwrap();
        assert_eq!(
            m.relates_to.as_deref(),
            Some("urn:uuid:1d2f4a66-5b0e-4c1e-9f6a-3c2b1a0f9e8d")
        );
        let d = &m.matches[0];
        assert_eq!(d.endpoint, "urn:uuid:2419d68a-2dd2-21b2-a205-ec3e7a9a7e4c");
        assert_eq!(
            d.types[0],
            (ns::DN.to_owned(), "NetworkVideoTransmitter".to_owned())
        );
        assert_eq!(d.xaddrs.len(), 2);
        assert_eq!(d.xaddrs[0], "http://192.168.1.64/onvif/device_service");
        assert_eq!(d.metadata_version, Some(10));
        assert_eq!(
            scope_value(&d.scopes, "name").as_deref(),
            Some("Front Door")
        );
        assert_eq!(
            scope_value(&d.scopes, "hardware").as_deref(),
            Some("DS-2CD2042WD-I")
        );
        assert_eq!(scope_value(&d.scopes, "serial"), None);
        assert_eq!(percent_decode("a%zz%2"), "a%zz%2");
    }

    #[test]
    fn uuid_layout() {
        let u = urn_uuid([0xff; 16]);
        assert_eq!(u, "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff");
    }
}
