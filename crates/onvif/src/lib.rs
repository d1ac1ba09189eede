//! # ipcamd-onvif: ONVIF device services and WS-Discovery, sans IO
//!
//! The SOAP side of an ONVIF device (Core, Media ver10, Media2 ver20, DeviceIO, Recording,
//! Search, Replay, Event, PTZ and Imaging services), as pure functions: the server hands
//! in the bytes of a request, a [`model::DeviceModel`] snapshot of what the device is
//! (cameras = profiles, recordings, addresses, the time), its users ([`wsse::SoapAuth`])
//! and the current time; it gets back an HTTP status and a SOAP envelope. No sockets, no clock reads: the
//! tokio layer (`ipcamd-server`'s `onvif` module) owns both.
//!
//! - [`soap`]: envelope parsing (quick-xml), faults.
//! - [`wsse`]: WS-Security UsernameToken PasswordDigest, access classes, [`wsse::SoapAuth`].
//! - [`model`]: the plain-data device snapshot.
//! - [`services`]: dispatch of every operation to its response; a write (encoder settings,
//!   imaging settings, users, scopes, host name, recording job mode) is checked against the model and comes
//!   out as a [`services::Change`] for the server to carry out and persist.
//! - [`events`]: the Event service's state (property values, pull-point subscriptions,
//!   their queues and expiry), fed by the server and read by the event operations.
//! - [`discovery`]: WS-Discovery (2005/04) Probe parsing, ProbeMatches/Hello/Bye; and the
//!   client side: Probe building, ProbeMatches parsing.
//! - [`client`]: the client side of the services (requests to a camera's Device, Media and
//!   Media2 services, parsers of its answers and faults), for taking in ONVIF cameras.
//! - [`xml`]: text building helpers, and the element tree the client-side parsers read.
//!
//! Time: every time here is UTC wallclock in Unix microseconds
//! ([`ipcamd_proto::time::UnixMicros`]); recordings are described by the capture wallclock
//! of their first and last access units, which is also what the replay `Range: clock=`
//! addresses.

pub mod client;
pub mod discovery;
pub mod events;
pub mod model;
pub mod services;
pub mod soap;
#[doc(hidden)]
pub mod testing;
pub mod wsse;
pub mod xml;

pub use model::DeviceModel;
pub use services::{handle, Response};
pub use soap::Fault;
pub use wsse::{NonceCache, Role, SoapAuth};

/// Namespace URIs, as the ONVIF WSDLs and XSDs define them.
pub mod ns {
    pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
    pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
    pub const TT: &str = "http://www.onvif.org/ver10/schema";
    pub const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
    pub const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
    pub const TR2: &str = "http://www.onvif.org/ver20/media/wsdl";
    pub const TMD: &str = "http://www.onvif.org/ver10/deviceIO/wsdl";
    pub const TRC: &str = "http://www.onvif.org/ver10/recording/wsdl";
    pub const TSE: &str = "http://www.onvif.org/ver10/search/wsdl";
    pub const TRP: &str = "http://www.onvif.org/ver10/replay/wsdl";
    pub const TER: &str = "http://www.onvif.org/ver10/error";
    pub const WSSE: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    pub const WSA: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
    pub const WSD: &str = "http://schemas.xmlsoap.org/ws/2005/04/discovery";
    pub const DN: &str = "http://www.onvif.org/ver10/network/wsdl";
    pub const TEV: &str = "http://www.onvif.org/ver10/events/wsdl";
    pub const TPTZ: &str = "http://www.onvif.org/ver20/ptz/wsdl";
    pub const TIMG: &str = "http://www.onvif.org/ver20/imaging/wsdl";
    pub const WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
    pub const WSTOP: &str = "http://docs.oasis-open.org/wsn/t-1";
    /// WS-Addressing 1.0 (the event service's endpoint references).
    pub const WSA5: &str = "http://www.w3.org/2005/08/addressing";
    pub const TNS1: &str = "http://www.onvif.org/ver10/topics";
    pub const XS: &str = "http://www.w3.org/2001/XMLSchema";
}
