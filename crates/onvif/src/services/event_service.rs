//! The Event service (ONVIF Core §9; namespace `tev`) and the WS-BaseNotification
//! operations of its pull points (`wsnt:Renew`, `wsnt:Unsubscribe`), over the state of
//! [`crate::events::EventBus`]. The event service is at `/onvif/events_service`; every
//! subscription has its own address, `/onvif/events/subscription/<id>`, where PullMessages,
//! SetSynchronizationPoint, Renew and Unsubscribe are sent.

use ipcamd_proto::time::{format_iso8601, UnixMicros};

use crate::events::{
    parse_duration, parse_termination, parse_topic_filter, Event, EventBus, EventError,
    PullOutcome, TOPICS,
};
use crate::model::DeviceModel;
use crate::ns;
use crate::soap::{envelope, Fault, Request};
use crate::xml::escape;

/// Path of a subscription's address, before its id.
pub const SUBSCRIPTION_PATH: &str = "/onvif/events/subscription/";

/// What an event operation needs besides the request: the bus, the path the request was
/// sent to (a subscription's address names it), and a fresh unguessable id in case the
/// operation creates a subscription.
pub struct EventContext<'a> {
    pub bus: &'a mut EventBus,
    pub path: &'a str,
    pub new_id: &'a str,
}

/// A PullMessages that found nothing queued: the caller waits until a publish names the
/// subscription or `deadline`, then answers with [`finish_pull`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPull {
    pub subscription: String,
    pub owner: String,
    pub deadline: UnixMicros,
    pub limit: usize,
}

pub(crate) enum Reply {
    Body(String),
    Wait(PendingPull),
}

fn fault(e: EventError) -> Fault {
    match e {
        EventError::TooMany(_) | EventError::TooManyForUser { .. } => Fault::receiver(
            "ter:CapabilityViolated",
            Some("ter:MaxPullPoints"),
            e.to_string(),
        ),
        EventError::Unknown(_) => Fault::invalid_arg("ter:ResourceUnknown", e.to_string()),
        EventError::NotOwner(_) => Fault::not_authorized(e.to_string()),
        EventError::InThePast => Fault::invalid_arg("ter:InvalidTerminationTime", e.to_string()),
    }
}

fn subscription_id(path: &str) -> Result<&str, Fault> {
    path.split('?')
        .next()
        .and_then(|p| p.strip_prefix(SUBSCRIPTION_PATH))
        .map(|id| id.trim_end_matches('/'))
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            Fault::invalid_arg(
                "ter:ResourceUnknown",
                "send this operation to the subscription's address (CreatePullPointSubscription's SubscriptionReference)",
            )
        })
}

/// The termination time an argument asks for; Err for an unreadable one.
fn termination(req: &Request, name: &str, now: UnixMicros) -> Result<Option<UnixMicros>, Fault> {
    match req.arg(name) {
        None | Some("") => Ok(None),
        Some(t) => parse_termination(t, now).map(Some).ok_or_else(|| {
            Fault::invalid_arg(
                "ter:InvalidTerminationTime",
                format!("{name} {t:?} is neither an xs:dateTime nor an xs:duration like PT60S"),
            )
        }),
    }
}

/// The `tev:Capabilities` element.
pub(crate) fn capabilities(max_pull_points: usize) -> String {
    format!("<tev:Capabilities WSSubscriptionPolicySupport=\"false\" WSPullPointSupport=\"true\" WSPausableSubscriptionManagerInterfaceSupport=\"false\" MaxNotificationProducers=\"0\" MaxPullPoints=\"{max_pull_points}\" PersistentNotificationStorage=\"false\"/>")
}

pub(crate) fn dispatch(
    req: &Request,
    m: &DeviceModel,
    ctx: &mut EventContext,
    owner: &str,
) -> Result<Reply, Fault> {
    let now = m.now;
    let a = req.action.as_str();
    let body = match (req.namespace.as_str(), a) {
        (ns::TEV, "GetServiceCapabilities") => format!(
            "<tev:GetServiceCapabilitiesResponse>{}</tev:GetServiceCapabilitiesResponse>",
            capabilities(ctx.bus.limits().total)
        ),
        (ns::TEV, "GetEventProperties") => event_properties(),
        (ns::TEV, "CreatePullPointSubscription") => {
            let until = termination(req, "InitialTerminationTime", now)?;
            let filter = req
                .arg("TopicExpression")
                .map(parse_topic_filter)
                .unwrap_or_default();
            let info = ctx
                .bus
                .subscribe(ctx.new_id, owner, filter, until, now)
                .map_err(fault)?;
            format!(
                "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa5:Address>{}{SUBSCRIPTION_PATH}{}</wsa5:Address></tev:SubscriptionReference><wsnt:CurrentTime>{}</wsnt:CurrentTime><wsnt:TerminationTime>{}</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>",
                escape(&m.http_base()),
                escape(&info.id),
                time(now),
                time(info.expires)
            )
        }
        (ns::TEV, "PullMessages") => {
            let id = subscription_id(ctx.path)?;
            let timeout = match req.arg("Timeout") {
                None => 0,
                Some(t) => parse_duration(t).ok_or_else(|| {
                    Fault::invalid_arg(
                        "ter:InvalidArgVal",
                        format!("Timeout {t:?} is not an xs:duration like PT10S"),
                    )
                })?,
            };
            let limit = match req.arg("MessageLimit") {
                None => usize::MAX,
                Some(l) => l.parse::<i64>().map(|l| l.max(1) as usize).map_err(|_| {
                    Fault::invalid_arg(
                        "ter:InvalidArgVal",
                        format!("MessageLimit {l:?} is not an integer"),
                    )
                })?,
            };
            match ctx
                .bus
                .pull(id, owner, timeout, limit, false, now)
                .map_err(fault)?
            {
                PullOutcome::Wait { deadline } => {
                    return Ok(Reply::Wait(PendingPull {
                        subscription: id.to_owned(),
                        owner: owner.to_owned(),
                        deadline,
                        limit,
                    }))
                }
                PullOutcome::Messages { messages, expires } => {
                    pull_response(&messages, expires, now)
                }
            }
        }
        (ns::TEV, "SetSynchronizationPoint") => {
            let id = subscription_id(ctx.path)?;
            ctx.bus.synchronize(id, owner, now).map_err(fault)?;
            "<tev:SetSynchronizationPointResponse/>".to_owned()
        }
        (ns::WSNT, "Renew") => {
            let id = subscription_id(ctx.path)?;
            let until = termination(req, "TerminationTime", now)?;
            let expires = ctx.bus.renew(id, owner, until, now).map_err(fault)?;
            format!(
                "<wsnt:RenewResponse><wsnt:TerminationTime>{}</wsnt:TerminationTime><wsnt:CurrentTime>{}</wsnt:CurrentTime></wsnt:RenewResponse>",
                time(expires),
                time(now)
            )
        }
        (ns::WSNT, "Unsubscribe") => {
            let id = subscription_id(ctx.path)?;
            ctx.bus.unsubscribe(id, owner, now).map_err(fault)?;
            "<wsnt:UnsubscribeResponse/>".to_owned()
        }
        _ => return Err(Fault::action_not_supported(&req.namespace, a)),
    };
    Ok(Reply::Body(body))
}

/// Answers a PullMessages that waited: whatever is queued now (maybe nothing), or a
/// fault when the subscription ended meanwhile.
pub fn finish_pull(bus: &mut EventBus, p: &PendingPull, now: UnixMicros) -> super::Response {
    let action = "PullMessages";
    match bus.pull(&p.subscription, &p.owner, 0, p.limit, true, now) {
        Ok(PullOutcome::Messages { messages, expires }) => super::Response {
            status: 200,
            body: envelope(&pull_response(&messages, expires, now)),
            action: action.to_owned(),
        },
        Ok(PullOutcome::Wait { .. }) => super::fault(
            action,
            Fault::receiver("ter:Action", None, "the pull could not complete"),
        ),
        Err(e) => super::fault(action, fault(e)),
    }
}

fn pull_response(messages: &[Event], expires: UnixMicros, now: UnixMicros) -> String {
    let msgs: String = messages.iter().map(notification).collect();
    format!(
        "<tev:PullMessagesResponse><tev:CurrentTime>{}</tev:CurrentTime><tev:TerminationTime>{}</tev:TerminationTime>{msgs}</tev:PullMessagesResponse>",
        time(now),
        time(expires)
    )
}

/// xs:dateTime with milliseconds.
fn time(t: UnixMicros) -> String {
    format_iso8601(t)
}

fn items(tag: &str, items: &[(&'static str, String)]) -> String {
    let inner: String = items
        .iter()
        .map(|(n, v)| {
            format!(
                "<tt:SimpleItem Name=\"{}\" Value=\"{}\"/>",
                escape(n),
                escape(v)
            )
        })
        .collect();
    format!("<tt:{tag}>{inner}</tt:{tag}>")
}

/// One `wsnt:NotificationMessage`.
pub fn notification(e: &Event) -> String {
    format!(
        "<wsnt:NotificationMessage><wsnt:Topic Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">{}</wsnt:Topic><wsnt:Message><tt:Message UtcTime=\"{}\" PropertyOperation=\"{}\">{}{}</tt:Message></wsnt:Message></wsnt:NotificationMessage>",
        e.topic,
        time(e.time),
        e.operation.as_str(),
        items("Source", &e.source),
        items("Data", &e.data)
    )
}

/// GetEventPropertiesResponse: the fixed topic set with every message's description.
fn event_properties() -> String {
    let mut set = String::new();
    // TOPICS are grouped by their path; open and close the levels as the paths change.
    let mut open: Vec<&str> = Vec::new();
    for t in TOPICS.iter() {
        let parts: Vec<&str> = t.topic.trim_start_matches("tns1:").split('/').collect();
        let (leaf, dirs) = parts.split_last().unwrap_or((&"", &[]));
        let common = open
            .iter()
            .zip(dirs.iter())
            .take_while(|(a, b)| a == b)
            .count();
        while open.len() > common {
            if let Some(d) = open.pop() {
                set += &format!("</tns1:{d}>");
            }
        }
        for d in &dirs[common..] {
            set += &format!("<tns1:{d}>");
            open.push(d);
        }
        let desc = |list: &[(&str, &str)]| -> String {
            list.iter()
                .map(|(n, ty)| format!("<tt:SimpleItemDescription Name=\"{n}\" Type=\"{ty}\"/>"))
                .collect()
        };
        set += &format!(
            "<tns1:{leaf} wstop:topic=\"true\"><tt:MessageDescription IsProperty=\"true\"><tt:Source>{}</tt:Source><tt:Data>{}</tt:Data></tt:MessageDescription></tns1:{leaf}>",
            desc(t.source),
            desc(t.data)
        );
    }
    while let Some(d) = open.pop() {
        set += &format!("</tns1:{d}>");
    }
    format!(
        "<tev:GetEventPropertiesResponse><tev:TopicNamespaceLocation>http://www.onvif.org/onvif/ver10/topics/topicns.xml</tev:TopicNamespaceLocation><wsnt:FixedTopicSet>true</wsnt:FixedTopicSet><wstop:TopicSet>{set}</wstop:TopicSet><wsnt:TopicExpressionDialect>http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet</wsnt:TopicExpressionDialect><wsnt:TopicExpressionDialect>http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete</wsnt:TopicExpressionDialect><tev:MessageContentFilterDialect>http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter</tev:MessageContentFilterDialect><tev:MessageContentSchemaLocation>http://www.onvif.org/onvif/ver10/schema/onvif.xsd</tev:MessageContentSchemaLocation></tev:GetEventPropertiesResponse>"
    )
}
