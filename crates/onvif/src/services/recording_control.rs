//! Profile G beyond listing recordings: the recording jobs (Recording Control:
//! GetRecordingJobs, GetRecordingJobConfiguration, GetRecordingJobState,
//! SetRecordingJobMode), a recording's and a track's configuration, and the event search
//! of the Search service over the recordings' history (FindEvents, GetEventSearchResults,
//! GetSearchState).
//!
//! Jobs: one per continuously recorded camera, token `Job_<camera>`, its source the
//! camera's profile, mode `Active` (recording) or `Idle`. Event search: the history is the
//! recorded sections; each start is a `tns1:RecordingHistory/Recording/State` event with
//! `IsRecording` true, each end (except the end of a section still being written) one with
//! false. Like FindRecordings, a search completes at once and keeps no state: the token
//! carries the search (`events:<start>:<end>:<max>:<recordings>`) and
//! GetEventSearchResults answers every match of it, whatever `MaxResults` says.
//! PTZ position search: recordings have no metadata track, so they hold no PTZ positions
//! (the virtual PTZ's position is live only); not supported
//! (`env:Receiver/ter:ActionNotSupported`).

use ipcamd_proto::time::{parse_utc, UnixMicros};

use crate::model::{DeviceModel, JobModel, RecordingModel};
use crate::soap::{Fault, Request};
use crate::xml::{el, escape};

use super::change::{empty, Apply, Change};
use super::{dt, recording_or_fault, source_info, track_type};

fn job<'a>(req: &Request, m: &'a DeviceModel) -> Result<&'a JobModel, Fault> {
    let token = req.arg("JobToken").unwrap_or_default();
    m.jobs.iter().find(|j| j.token() == token).ok_or_else(|| {
        Fault::invalid_arg(
            "ter:NoRecordingJob",
            format!(
                "recording job {token:?} does not exist; GetRecordingJobs lists them ({})",
                m.jobs
                    .iter()
                    .map(JobModel::token)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn mode(active: bool) -> &'static str {
    if active {
        "Active"
    } else {
        "Idle"
    }
}

/// tt:RecordingJobConfiguration of a job.
fn job_configuration(j: &JobModel, tag: &str) -> String {
    format!(
        "<{tag}>{}<tt:Mode>{}</tt:Mode><tt:Priority>1</tt:Priority><tt:Source><tt:SourceToken Type=\"http://www.onvif.org/ver10/schema/Profile\">{}</tt:SourceToken></tt:Source></{tag}>",
        el("tt:RecordingToken", &j.recording),
        mode(j.active),
        el("tt:Token", &j.recording)
    )
}

/// The Recording Control read operations added for Profile G; None for others.
pub(super) fn read(req: &Request, m: &DeviceModel) -> Option<Result<String, Fault>> {
    Some(match req.action.as_str() {
        "GetRecordingJobs" => Ok(m
            .jobs
            .iter()
            .map(|j| {
                format!(
                    "<trc:JobItem>{}{}</trc:JobItem>",
                    el("tt:JobToken", j.token()),
                    job_configuration(j, "tt:JobConfiguration")
                )
            })
            .collect()),
        "GetRecordingJobConfiguration" => {
            job(req, m).map(|j| job_configuration(j, "trc:JobConfiguration"))
        }
        "GetRecordingJobState" => job(req, m).map(|j| job_state(j, m)),
        "GetRecordingConfiguration" => {
            recording_or_fault(m, req.arg("RecordingToken")).map(|r| {
                format!(
                    "<trc:RecordingConfiguration><tt:Source>{}</tt:Source><tt:Content>continuous</tt:Content><tt:MaximumRetentionTime>PT0S</tt:MaximumRetentionTime></trc:RecordingConfiguration>",
                    source_info(r, m)
                )
            })
        }
        "GetTrackConfiguration" => (|| {
            let r = recording_or_fault(m, req.arg("RecordingToken"))?;
            let token = req.arg("TrackToken").unwrap_or_default();
            let t = r.tracks.iter().find(|t| t.token == token).ok_or_else(|| {
                Fault::invalid_arg(
                    "ter:NoTrack",
                    format!(
                        "recording {:?} has no track {token:?} ({})",
                        r.token,
                        r.tracks.iter().map(|t| t.token.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            Ok(format!(
                "<trc:TrackConfiguration><tt:TrackType>{}</tt:TrackType>{}</trc:TrackConfiguration>",
                track_type(t.kind),
                el("tt:Description", &t.codec)
            ))
        })(),
        _ => return None,
    })
}

/// tt:RecordingJobStateInformation: `Active` while the job records and a section is being
/// written, `Error` while it should record but the camera delivers nothing, `Idle`.
fn job_state(j: &JobModel, m: &DeviceModel) -> String {
    let state = match (j.active, j.writing) {
        (false, _) => "Idle",
        (true, true) => "Active",
        (true, false) => "Error",
    };
    let error = if state == "Error" {
        el("tt:Error", "the camera delivers no media now")
    } else {
        String::new()
    };
    let tracks: String = m
        .recording(&j.recording)
        .map(|r| {
            r.tracks
                .iter()
                .map(|t| {
                    format!(
                        "<tt:Track>{}{}{error}<tt:State>{state}</tt:State></tt:Track>",
                        el("tt:SourceTag", &t.token),
                        el("tt:Destination", &t.token)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "<trc:State>{}<tt:State>{state}</tt:State><tt:Sources><tt:SourceToken Type=\"http://www.onvif.org/ver10/schema/Profile\">{}</tt:SourceToken><tt:State>{state}</tt:State><tt:Tracks>{tracks}</tt:Tracks></tt:Sources></trc:State>",
        el("tt:RecordingToken", &j.recording),
        el("tt:Token", &j.recording)
    )
}

/// SetRecordingJobMode: `Active` records, `Idle` stops.
pub(super) fn set_job_mode(req: &Request, m: &DeviceModel) -> Result<Apply, Fault> {
    let j = job(req, m)?;
    let active = match req.arg("Mode") {
        Some("Active") => true,
        Some("Idle") => false,
        other => {
            return Err(Fault::invalid_arg(
                "ter:BadMode",
                format!("Mode {:?}: use Active or Idle", other.unwrap_or_default()),
            ))
        }
    };
    Ok(Apply::new(
        req,
        Change::RecordingJobMode {
            recording: j.recording.clone(),
            active,
        },
        empty("trc", "SetRecordingJobMode"),
    ))
}

// ---------------------------------------------------------------- event search

/// A FindEvents search, as its token carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EventSearch {
    start: UnixMicros,
    /// None: open (up to now, or back to the start of the recordings in reverse).
    end: Option<UnixMicros>,
    max: Option<usize>,
    /// Empty: every recording.
    recordings: Vec<String>,
    start_state: bool,
}

impl EventSearch {
    fn token(&self) -> String {
        format!(
            "events:{}:{}:{}:{}:{}",
            self.start,
            self.end.map(|e| e.to_string()).unwrap_or_default(),
            self.max.map(|e| e.to_string()).unwrap_or_default(),
            u8::from(self.start_state),
            self.recordings.join(",")
        )
    }

    fn parse(token: &str) -> Option<EventSearch> {
        let mut p = token.strip_prefix("events:")?.splitn(5, ':');
        let start = p.next()?.parse().ok()?;
        let opt = |s: &str| -> Option<Option<i64>> {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        let end = opt(p.next()?)?;
        let max = opt(p.next()?)?.map(|m| m.max(0) as usize);
        let start_state = p.next()? == "1";
        let recs = p.next()?;
        Some(EventSearch {
            start,
            end,
            max,
            recordings: recs
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            start_state,
        })
    }
}

fn bad_token(token: &str) -> Fault {
    Fault::invalid_arg(
        "ter:InvalidToken",
        format!("search token {token:?} was not handed out by FindEvents"),
    )
}

/// One recording-state event.
struct Found<'a> {
    r: &'a RecordingModel,
    time: UnixMicros,
    recording: bool,
    start_state: bool,
}

fn event_xml(f: &Found) -> String {
    let track =
        f.r.tracks
            .first()
            .map(|t| t.token.as_str())
            .unwrap_or("VIDEO001");
    format!(
        "<tt:Result>{}{}<tt:Time>{}</tt:Time><tt:Event><wsnt:Topic Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">tns1:RecordingHistory/Recording/State</wsnt:Topic><wsnt:Message><tt:Message UtcTime=\"{}\" PropertyOperation=\"{}\"><tt:Source><tt:SimpleItem Name=\"RecordingToken\" Value=\"{}\"/></tt:Source><tt:Data><tt:SimpleItem Name=\"IsRecording\" Value=\"{}\"/></tt:Data></tt:Message></wsnt:Message></tt:Event><tt:StartStateEvent>{}</tt:StartStateEvent></tt:Result>",
        el("tt:RecordingToken", &f.r.token),
        el("tt:TrackToken", track),
        dt(f.time),
        dt(f.time),
        if f.start_state { "Initialized" } else { "Changed" },
        escape(&f.r.token),
        f.recording,
        f.start_state
    )
}

fn run(s: &EventSearch, m: &DeviceModel) -> Vec<String> {
    let reverse = s.end.is_some_and(|e| e < s.start);
    let (lo, hi) = match s.end {
        Some(e) if reverse => (e, s.start),
        Some(e) => (s.start, e),
        None if reverse => (i64::MIN, s.start),
        None => (s.start, i64::MAX),
    };
    let mut found: Vec<Found> = Vec::new();
    for r in m
        .recordings
        .iter()
        .filter(|r| s.recordings.is_empty() || s.recordings.contains(&r.token))
    {
        let last = r.sections.len().saturating_sub(1);
        for (i, sec) in r.sections.iter().enumerate() {
            if (lo..=hi).contains(&sec.start) {
                found.push(Found {
                    r,
                    time: sec.start,
                    recording: true,
                    start_state: false,
                });
            }
            let growing = r.recording && i == last;
            if !growing && (lo..=hi).contains(&sec.end) {
                found.push(Found {
                    r,
                    time: sec.end,
                    recording: false,
                    start_state: false,
                });
            }
        }
        if s.start_state {
            let inside = r
                .sections
                .iter()
                .any(|sec| sec.start <= s.start && s.start <= sec.end);
            found.push(Found {
                r,
                time: s.start,
                recording: inside,
                start_state: true,
            });
        }
    }
    // Start states first, then in the direction of the search.
    found.sort_by_key(|f| (!f.start_state, if reverse { -f.time } else { f.time }));
    let max = s.max.unwrap_or(usize::MAX);
    found.iter().take(max).map(event_xml).collect()
}

/// The Search service's event operations; None for others.
pub(super) fn search(req: &Request, m: &DeviceModel) -> Option<Result<String, Fault>> {
    Some(match req.action.as_str() {
        "FindEvents" => (|| {
            let time = |name: &str| -> Result<Option<UnixMicros>, Fault> {
                match req.arg(name) {
                    None => Ok(None),
                    Some(t) => parse_utc(t).map(Some).ok_or_else(|| {
                        Fault::invalid_arg(
                            "ter:InvalidArgs",
                            format!("{name} {t:?} is not a UTC time like 2026-11-21T08:00:00Z"),
                        )
                    }),
                }
            };
            let start = time("StartPoint")?.ok_or_else(|| {
                Fault::invalid_arg("ter:InvalidArgs", "FindEvents needs a StartPoint")
            })?;
            let recordings: Vec<String> = req
                .args_named("IncludedRecordings")
                .map(str::to_owned)
                .collect();
            for r in &recordings {
                recording_or_fault(m, Some(r))?;
            }
            let max = match req.arg("MaxMatches") {
                None => None,
                Some(x) => Some(x.parse::<usize>().map_err(|_| {
                    Fault::invalid_arg(
                        "ter:InvalidArgs",
                        format!("MaxMatches {x:?} is not a number"),
                    )
                })?),
            };
            let s = EventSearch {
                start,
                end: time("EndPoint")?,
                max,
                recordings,
                start_state: req.arg("IncludeStartState") == Some("true"),
            };
            Ok(el("tse:SearchToken", s.token()))
        })(),
        "GetEventSearchResults" => {
            let token = req.arg("SearchToken").unwrap_or_default();
            match EventSearch::parse(token) {
                Some(s) => Ok(format!(
                    "<tse:ResultList><tt:SearchState>Completed</tt:SearchState>{}</tse:ResultList>",
                    run(&s, m).concat()
                )),
                None => Err(bad_token(token)),
            }
        }
        "GetSearchState" => {
            let token = req.arg("SearchToken").unwrap_or_default();
            if token.starts_with("search:") || EventSearch::parse(token).is_some() {
                Ok("<tse:State>Completed</tse:State>".to_owned())
            } else {
                Err(bad_token(token))
            }
        }
        "FindPTZPosition" | "GetPTZPositionSearchResults" => Err(Fault::receiver(
            "ter:ActionNotSupported",
            None,
            format!(
                "{}: recordings here have no metadata track, so they hold no PTZ positions to \
                 search (the virtual PTZ's position is live only: PTZ GetStatus)",
                req.action
            ),
        )),
        _ => return None,
    })
}
