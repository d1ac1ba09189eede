//! SOAP 1.2 envelopes (W3C SOAP 1.2 Part 1 §5, HTTP binding Part 2 §7), parsed with
//! `quick-xml`: the operation (local name and namespace of the Body's first element), its
//! arguments, and the WS-Security `UsernameToken` of the Header; and the building of
//! responses and faults (ONVIF Core §5.11: `env:Sender`/`env:Receiver` with `ter:` subcodes).
//!
//! Left out: SOAP 1.1 replies (a SOAP 1.1 envelope is read, the answer is SOAP 1.2, which
//! every ONVIF client speaks), MTOM, and any header other than `wsse:Security` and
//! `wsa:MessageID`.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::ns;
use crate::xml::{escape, reference_char};

/// Requests larger than this are refused before parsing (a GetProfiles is under 1 KiB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Deeper element nesting than this is refused (no ONVIF request nests beyond ~8).
const MAX_DEPTH: usize = 64;

/// A parsed SOAP request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Namespace URI of the Body's first element, e.g. `http://www.onvif.org/ver10/media/wsdl`.
    pub namespace: String,
    /// Local name of the Body's first element, e.g. `GetProfiles`.
    pub action: String,
    /// Every element with text inside the operation element, in document order, as
    /// (local name, text): `ProfileToken`, `Protocol`, `Stream`, ...; and the attributes
    /// of the elements inside the operation element (not namespace declarations) as
    /// (`@` + local name, value), where their element starts: `@token`, `@GovLength`.
    pub args: Vec<(String, String)>,
    /// WS-Security UsernameToken from the Header, if any.
    pub username_token: Option<UsernameToken>,
}

impl Request {
    /// Text of the first argument element named `local` (any depth), trimmed.
    pub fn arg(&self, local: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == local)
            .map(|(_, v)| v.trim())
    }

    /// Texts of every argument element named `local`.
    pub fn args_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.args
            .iter()
            .filter(move |(k, _)| k == local)
            .map(|(_, v)| v.trim())
    }
}

/// The `wsse:UsernameToken` of a request, as sent (nonce still base64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    pub password: String,
    pub password_type: String,
    pub nonce: String,
    pub created: String,
}

/// A SOAP fault: `env:Sender` or `env:Receiver`, up to two `ter:` subcodes, and a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `true` = `env:Sender` (HTTP 400), `false` = `env:Receiver` (HTTP 500).
    pub sender: bool,
    /// Subcode, e.g. `ter:InvalidArgVal`.
    pub subcode: &'static str,
    /// Second-level subcode, e.g. `ter:NoProfile`.
    pub subsubcode: Option<&'static str>,
    pub reason: String,
}

impl Fault {
    pub fn sender(
        subcode: &'static str,
        subsub: Option<&'static str>,
        reason: impl Into<String>,
    ) -> Fault {
        Fault {
            sender: true,
            subcode,
            subsubcode: subsub,
            reason: reason.into(),
        }
    }
    pub fn receiver(
        subcode: &'static str,
        subsub: Option<&'static str>,
        reason: impl Into<String>,
    ) -> Fault {
        Fault {
            sender: false,
            subcode,
            subsubcode: subsub,
            reason: reason.into(),
        }
    }
    /// Malformed envelope or XML: `env:Sender/ter:WellFormed`.
    pub fn not_well_formed(reason: impl Into<String>) -> Fault {
        Fault::sender("ter:WellFormed", None, reason)
    }
    /// `env:Receiver/ter:ActionNotSupported`.
    pub fn action_not_supported(namespace: &str, action: &str) -> Fault {
        Fault::receiver(
            "ter:ActionNotSupported",
            None,
            format!("operation {action} of {namespace} is not supported by this device"),
        )
    }
    /// `env:Sender/ter:InvalidArgVal/<sub>`.
    pub fn invalid_arg(sub: &'static str, reason: impl Into<String>) -> Fault {
        Fault::sender("ter:InvalidArgVal", Some(sub), reason)
    }
    /// `env:Sender/ter:NotAuthorized`.
    pub fn not_authorized(reason: impl Into<String>) -> Fault {
        Fault::sender("ter:NotAuthorized", None, reason)
    }
    /// HTTP status for this fault (SOAP 1.2 Part 2 §7.5.1.2; ONVIF Core §5.12.2).
    pub fn http_status(&self) -> u16 {
        if self.sender {
            400
        } else {
            500
        }
    }

    /// The whole fault envelope.
    pub fn to_xml(&self) -> String {
        let code = if self.sender {
            "env:Sender"
        } else {
            "env:Receiver"
        };
        let subsub = self
            .subsubcode
            .map(|s| format!("<env:Subcode><env:Value>{s}</env:Value></env:Subcode>"))
            .unwrap_or_default();
        envelope(&format!(
            "<env:Fault><env:Code><env:Value>{code}</env:Value><env:Subcode><env:Value>{}</env:Value>{subsub}</env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">{}</env:Text></env:Reason></env:Fault>",
            self.subcode,
            escape(&self.reason)
        ))
    }
}

/// A SOAP 1.2 envelope around `body` with every namespace prefix the responses use.
pub fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope xmlns:env=\"{}\" xmlns:tt=\"{}\" xmlns:tds=\"{}\" xmlns:trt=\"{}\" xmlns:tr2=\"{}\" xmlns:tmd=\"{}\" xmlns:trc=\"{}\" xmlns:tse=\"{}\" xmlns:trp=\"{}\" xmlns:ter=\"{}\" xmlns:tev=\"{}\" xmlns:wsnt=\"{}\" xmlns:wstop=\"{}\" xmlns:wsa5=\"{}\" xmlns:tns1=\"{}\" xmlns:xs=\"{}\" xmlns:tptz=\"{}\" xmlns:timg=\"{}\"><env:Body>{body}</env:Body></env:Envelope>\n",
        ns::SOAP12,
        ns::TT,
        ns::TDS,
        ns::TRT,
        ns::TR2,
        ns::TMD,
        ns::TRC,
        ns::TSE,
        ns::TRP,
        ns::TER,
        ns::TEV,
        ns::WSNT,
        ns::WSTOP,
        ns::WSA5,
        ns::TNS1,
        ns::XS,
        ns::TPTZ,
        ns::TIMG,
    )
}

/// Parses a SOAP 1.2 (or 1.1) request envelope.
pub fn parse_request(body: &[u8]) -> Result<Request, Fault> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(Fault::sender(
            "ter:WellFormed",
            None,
            format!(
                "request of {} bytes is larger than the {MAX_REQUEST_BYTES} bytes accepted",
                body.len()
            ),
        ));
    }
    let mut reader = NsReader::from_reader(body);
    // Text is trimmed as a whole value at its end tag, not per text event: quick-xml splits
    // text at every entity reference, and trimming the pieces dropped the spaces next to
    // one (`a &amp; b` read as `a&b`, so a password set by CreateUsers was not the one sent).
    reader.config_mut().trim_text(false);
    // Element stack: (namespace, local name).
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut req = Request::default();
    let mut saw_envelope = false;
    let mut saw_body = false;
    // Index in `stack` of the operation element, once found.
    let mut op_depth: Option<usize> = None;
    let mut token = UsernameToken::default();
    let mut in_token = false;
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| Fault::not_well_formed(format!("malformed XML: {e}")))?;
        let ns_of = |r: &ResolveResult| match r {
            ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let nsuri = ns_of(&resolved);
                let depth = stack.len();
                if depth == 0 {
                    if local != "Envelope" || (nsuri != ns::SOAP12 && nsuri != ns::SOAP11) {
                        return Err(Fault::not_well_formed(format!(
                            "the document element is {{{nsuri}}}{local}, not a SOAP Envelope"
                        )));
                    }
                    saw_envelope = true;
                } else if depth == 1 && local == "Body" {
                    saw_body = true;
                } else if depth == 2
                    && saw_body
                    && op_depth.is_none()
                    && stack.get(1).map(|s| s.1.as_str()) == Some("Body")
                {
                    req.namespace = nsuri.clone();
                    req.action = local.clone();
                    op_depth = Some(depth);
                } else if op_depth.is_some_and(|d| depth > d) {
                    for a in e.attributes() {
                        let a = a.map_err(|e| {
                            Fault::not_well_formed(format!("malformed attribute: {e}"))
                        })?;
                        let key = a.key;
                        if key.as_namespace_binding().is_some() {
                            continue;
                        }
                        let value = a.unescape_value().map_err(|e| {
                            Fault::not_well_formed(format!("malformed attribute value: {e}"))
                        })?;
                        req.args.push((
                            format!("@{}", String::from_utf8_lossy(key.local_name().as_ref())),
                            value.into_owned(),
                        ));
                    }
                } else if local == "UsernameToken" && nsuri == ns::WSSE {
                    in_token = true;
                } else if in_token && local == "Password" {
                    for a in e.attributes().flatten() {
                        if a.key.local_name().as_ref() == b"Type" {
                            token.password_type = String::from_utf8_lossy(&a.value).into_owned();
                        }
                    }
                }
                if !is_empty {
                    if stack.len() >= MAX_DEPTH {
                        return Err(Fault::not_well_formed(format!(
                            "elements nested deeper than {MAX_DEPTH}"
                        )));
                    }
                    stack.push((nsuri, local));
                    text.clear();
                }
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| Fault::not_well_formed(format!("text is not UTF-8: {e}")))?;
                text.push_str(&s);
            }
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => match reference_char(&r) {
                Some(c) => text.push(c),
                None => {
                    return Err(Fault::not_well_formed(format!(
                        "unknown entity reference &{};",
                        String::from_utf8_lossy(&r)
                    )))
                }
            },
            Event::End(_) => {
                let Some((nsuri, local)) = stack.pop() else {
                    return Err(Fault::not_well_formed("unbalanced end tag"));
                };
                let value = std::mem::take(&mut text);
                if in_token {
                    match local.as_str() {
                        "Username" => token.username = value.trim().to_owned(),
                        "Password" => token.password = value.trim().to_owned(),
                        "Nonce" => token.nonce = value.trim().to_owned(),
                        "Created" => token.created = value.trim().to_owned(),
                        "UsernameToken" if nsuri == ns::WSSE => {
                            in_token = false;
                            req.username_token = Some(std::mem::take(&mut token));
                        }
                        _ => {}
                    }
                } else if let Some(d) = op_depth {
                    if stack.len() > d && !value.trim().is_empty() {
                        req.args.push((local, value.trim().to_owned()));
                    }
                }
            }
            Event::Eof => break,
            Event::DocType(_) => {
                return Err(Fault::not_well_formed(
                    "a DOCTYPE is not allowed in a SOAP message",
                ))
            }
            _ => {}
        }
        buf.clear();
    }
    if !saw_envelope {
        return Err(Fault::not_well_formed("no SOAP Envelope"));
    }
    if !stack.is_empty() {
        return Err(Fault::not_well_formed(
            "the document ends inside an element",
        ));
    }
    if req.action.is_empty() {
        return Err(Fault::not_well_formed(
            "the SOAP Body has no operation element",
        ));
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET_STREAM_URI: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header><Security s:mustUnderstand="1" xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><UsernameToken><Username>admin</Username><Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">tuOSpGlFlIXsozq4HFNeeGeFLEI=</Password><Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">LKqI6G/AikKCQrN0zqZFlg==</Nonce><Created xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">2010-09-16T07:50:45Z</Created></UsernameToken></Security></s:Header><s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><GetStreamUri xmlns="http://www.onvif.org/ver10/media/wsdl"><StreamSetup><Stream xmlns="http://www.onvif.org/ver10/schema">RTP-Unicast</Stream><Transport xmlns="http://www.onvif.org/ver10/schema"><Protocol>RTSP</Protocol></Transport></StreamSetup><ProfileToken>cam&amp;1</ProfileToken></GetStreamUri></s:Body></s:Envelope>"#;

    #[test]
    fn parses_action_args_and_token() {
        let r = parse_request(GET_STREAM_URI.as_bytes()).unwrap();
        assert_eq!(r.action, "GetStreamUri");
        assert_eq!(r.namespace, ns::TRT);
        assert_eq!(r.arg("Stream"), Some("RTP-Unicast"));
        assert_eq!(r.arg("Protocol"), Some("RTSP"));
        assert_eq!(r.arg("ProfileToken"), Some("cam&1"));
        let t = r.username_token.unwrap();
        assert_eq!(t.username, "admin");
        assert_eq!(t.nonce, "LKqI6G/AikKCQrN0zqZFlg==");
        assert_eq!(t.created, "2010-09-16T07:50:45Z");
        assert!(t.password_type.ends_with("#PasswordDigest"));
    }

    /// Found by the `wsse` fuzz target (fuzz/seeds/wsse/regression-space-between-references):
    /// the spaces next to an entity reference were lost.
    #[test]
    fn spaces_next_to_references_are_kept() {
        let x = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken><wsse:Username> a &amp; b </wsse:Username><wsse:Created>&apos; &apos;</wsse:Created></wsse:UsernameToken></wsse:Security></e:Header><e:Body><CreateUsers xmlns="http://www.onvif.org/ver10/device/wsdl"><User>
          <Username>x</Username>
          <Password>p &lt; q</Password>
        </User></CreateUsers></e:Body></e:Envelope>"#;
        let r = parse_request(x.as_bytes()).unwrap();
        let t = r.username_token.clone().unwrap();
        assert_eq!(t.username, "a & b");
        assert_eq!(t.created, "' '");
        assert_eq!(r.arg("Password"), Some("p < q"));
        // Whole values are trimmed, and whitespace between elements is no argument.
        assert_eq!(
            r.args,
            vec![
                ("Username".to_owned(), "x".to_owned()),
                ("Password".to_owned(), "p < q".to_owned())
            ]
        );
    }

    #[test]
    fn attributes_inside_the_operation_are_arguments() {
        let x = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><SetVideoEncoderConfiguration xmlns="http://www.onvif.org/ver20/media/wsdl" ignored="op"><Configuration token="VideoEncoder_a&amp;b" GovLength="10" xmlns:tt="http://www.onvif.org/ver10/schema"><tt:Name>n</tt:Name></Configuration></SetVideoEncoderConfiguration></e:Body></e:Envelope>"#;
        let r = parse_request(x.as_bytes()).unwrap();
        assert_eq!(r.arg("@token"), Some("VideoEncoder_a&b"));
        assert_eq!(r.arg("@GovLength"), Some("10"));
        assert_eq!(r.arg("@ignored"), None);
        assert!(!r
            .args
            .iter()
            .any(|(k, _)| k.contains("xmlns") || k == "@tt"));
        assert_eq!(r.arg("Name"), Some("n"));
        let bad = x.replace("GovLength=\"10\"", "GovLength=\"&bogus;\"");
        assert!(parse_request(bad.as_bytes()).is_err());
    }

    #[test]
    fn empty_operation_element() {
        let x = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><GetProfiles xmlns="http://www.onvif.org/ver10/media/wsdl"/></e:Body></e:Envelope>"#;
        let r = parse_request(x.as_bytes()).unwrap();
        assert_eq!(r.action, "GetProfiles");
        assert!(r.args.is_empty());
        assert!(r.username_token.is_none());
    }

    #[test]
    fn malformed_inputs_are_sender_faults() {
        for bad in [
            "",
            "not xml",
            "<a/>",
            "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body></e:Body></e:Envelope>",
            "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body><x>",
            "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body><x>&bogus;</x></e:Body></e:Envelope>",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"/>",
        ] {
            let f = parse_request(bad.as_bytes()).unwrap_err();
            assert!(f.sender, "{bad:?}");
            assert_eq!(f.http_status(), 400);
            assert!(f.to_xml().contains("env:Sender"));
        }
        let deep = format!(
            "<e:Envelope xmlns:e=\"http://www.w3.org/2003/05/soap-envelope\"><e:Body><x>{}{}</x></e:Body></e:Envelope>",
            "<a>".repeat(100),
            "</a>".repeat(100)
        );
        assert!(parse_request(deep.as_bytes()).is_err());
    }

    #[test]
    fn fault_xml_names_codes() {
        let f = Fault::invalid_arg("ter:NoProfile", "no profile <x>");
        let x = f.to_xml();
        assert!(x.contains("<env:Value>env:Sender</env:Value>"));
        assert!(x.contains("ter:InvalidArgVal"));
        assert!(x.contains("ter:NoProfile"));
        assert!(x.contains("no profile &lt;x&gt;"));
    }
}
