"""Changes ipcamd's settings with the onvif-zeep client (PyPI `onvif-zeep`, which checks
every answer against the ONVIF WSDLs): the video encoder, users, scopes, host name, the
clock, the recording job's mode; and reads them back.

Usage: onvif_zeep_config.py HOST PORT USER PASSWORD STEP [ARG]
STEP:
  set       GetVideoEncoderConfigurationOptions, SetVideoEncoderConfiguration (ARG =
            WIDTHxHEIGHT, from the options), CreateUsers vic (User), olaf (Operator) and
            tmp, DeleteUsers tmp, SetUser (vic's password becomes vic-pw-1b),
            AddScopes, SetHostname, SetSystemDateAndTime (Manual: a fault is expected),
            FindEvents, FindPTZPosition (a fault is expected)
  jobmode   SetRecordingJobMode ARG (Active or Idle), then GetRecordingJobState
  refused   as a user who may not: CreateUsers, SetRecordingJobMode (faults expected);
            GetProfiles (allowed)
  read      what is set now: encoder, users, scopes, host name, job mode
Prints one JSON object; exits non-zero on an unexpected SOAP error.
"""
import datetime
import json
import sys

from onvif import ONVIFCamera, ONVIFError
from zeep.exceptions import Fault

host, port, user, password, step = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
arg = sys.argv[6] if len(sys.argv) > 6 else None
out = {}
cam = ONVIFCamera(host, port, user, password)
dev = cam.devicemgmt
for s in dev.GetServices(False):
    cam.xaddrs[s.Namespace] = s.XAddr
media = cam.create_media_service()
recording = cam.create_recording_service()
TOKEN = "VideoEncoder_cam1"


def fault(call):
    """Runs call; returns (True, the fault's text) when it faults, (False, None) if not."""
    try:
        call()
        return False, None
    except ONVIFError as e:
        # onvif-zeep wraps zeep's Fault.
        f = e.__context__
        if not isinstance(f, Fault):
            raise
        return True, "%s %s" % (f.message, [str(c) for c in (f.subcodes or [])])


def job_token():
    return recording.GetRecordingJobs()[0].JobToken


def read_state(o):
    enc = media.GetVideoEncoderConfiguration({"ConfigurationToken": TOKEN})
    o["width"] = enc.Resolution.Width
    o["height"] = enc.Resolution.Height
    o["fps"] = enc.RateControl.FrameRateLimit
    o["gov_length"] = enc.H264.GovLength
    o["users"] = sorted("%s:%s" % (u.Username, u.UserLevel) for u in dev.GetUsers())
    o["scopes"] = [
        "%s %s" % (s.ScopeDef, s.ScopeItem) for s in dev.GetScopes() if s.ScopeDef == "Configurable"
    ]
    o["hostname"] = dev.GetHostname().Name
    jobs = recording.GetRecordingJobs()
    o["job_mode"] = jobs[0].JobConfiguration.Mode if jobs else None


if step == "set":
    opts = media.GetVideoEncoderConfigurationOptions({"ConfigurationToken": TOKEN})
    out["resolutions"] = ["%dx%d" % (r.Width, r.Height) for r in opts.H264.ResolutionsAvailable]
    out["fps_range"] = [opts.H264.FrameRateRange.Min, opts.H264.FrameRateRange.Max]
    ext = getattr(opts.Extension, "H264", None) if opts.Extension is not None else None
    out["bitrate_range"] = [ext.BitrateRange.Min, ext.BitrateRange.Max] if ext is not None else None
    out["gov_range"] = [opts.H264.GovLengthRange.Min, opts.H264.GovLengthRange.Max]
    width, height = (int(x) for x in arg.split("x"))
    cfg = media.GetVideoEncoderConfiguration({"ConfigurationToken": TOKEN})
    cfg.Resolution.Width = width
    cfg.Resolution.Height = height
    cfg.RateControl.FrameRateLimit = 15
    cfg.RateControl.BitrateLimit = 800
    cfg.H264.GovLength = 30
    req = media.create_type("SetVideoEncoderConfiguration")
    req.Configuration = cfg
    req.ForcePersistence = True
    media.SetVideoEncoderConfiguration(req)
    # Outside the options: refused.
    cfg.RateControl.FrameRateLimit = 1000
    req.Configuration = cfg
    out["fps_1000_refused"] = fault(lambda: media.SetVideoEncoderConfiguration(req))
    dev.CreateUsers(
        {
            "User": [
                {"Username": "vic", "Password": "vic-pw-1", "UserLevel": "User"},
                {"Username": "olaf", "Password": "olaf-pw-2", "UserLevel": "Operator"},
                {"Username": "tmp", "Password": "tmp-pw-3", "UserLevel": "User"},
            ]
        }
    )
    dev.DeleteUsers({"Username": ["tmp"]})
    # vic's password changes (SetUser), its level stays.
    dev.SetUser({"User": [{"Username": "vic", "Password": "vic-pw-1b", "UserLevel": "User"}]})
    out["clash_refused"] = fault(
        lambda: dev.CreateUsers({"User": [{"Username": "vic", "Password": "x", "UserLevel": "User"}]})
    )
    out["last_admin_refused"] = fault(lambda: dev.DeleteUsers({"Username": [user]}))
    dev.AddScopes({"ScopeItem": ["onvif://www.onvif.org/location/city/Lyon"]})
    dev.SetHostname({"Name": "ipcamd-test-box"})
    now = datetime.datetime.now(datetime.timezone.utc)
    out["manual_time_refused"] = fault(
        lambda: dev.SetSystemDateAndTime(
            {
                "DateTimeType": "Manual",
                "DaylightSavings": False,
                "TimeZone": {"TZ": "UTC0"},
                "UTCDateTime": {
                    "Date": {"Year": now.year, "Month": now.month, "Day": now.day},
                    "Time": {"Hour": now.hour, "Minute": now.minute, "Second": now.second},
                },
            }
        )
    )
    dev.SetSystemDateAndTime({"DateTimeType": "NTP", "DaylightSavings": False, "TimeZone": {"TZ": "UTC0"}})
    out["date_time_type"] = dev.GetSystemDateAndTime().DateTimeType
    search = cam.create_search_service()
    token = search.FindEvents(
        {
            "StartPoint": now - datetime.timedelta(hours=1),
            "Scope": {"IncludedRecordings": ["cam1"]},
            "SearchFilter": {},
            "IncludeStartState": False,
            "KeepAliveTime": "PT10S",
        }
    )
    res = search.GetEventSearchResults({"SearchToken": token, "MinResults": 1, "WaitTime": "PT1S"})
    out["events_state"] = res.SearchState
    out["events"] = len(res.Result or [])
    out["ptz_search_refused"] = fault(
        lambda: search.FindPTZPosition(
            {
                "StartPoint": now,
                "Scope": {},
                "SearchFilter": {"MinPosition": {}, "MaxPosition": {}, "EnterOrExit": False},
                "KeepAliveTime": "PT10S",
            }
        )
    )
    rc = recording.GetRecordingConfiguration({"RecordingToken": "cam1"})
    out["recording_content"] = rc.Content
    read_state(out)
elif step == "jobmode":
    t = job_token()
    recording.SetRecordingJobMode({"JobToken": t, "Mode": arg})
    out["job_state"] = recording.GetRecordingJobState({"JobToken": t}).State
    out["job_mode"] = recording.GetRecordingJobs()[0].JobConfiguration.Mode
elif step == "refused":
    out["create_users_refused"] = fault(
        lambda: dev.CreateUsers({"User": [{"Username": "eve", "Password": "x", "UserLevel": "Administrator"}]})
    )
    out["job_mode_refused"] = fault(lambda: recording.SetRecordingJobMode({"JobToken": job_token(), "Mode": "Idle"}))
    out["profiles"] = [p.token for p in media.GetProfiles()]
elif step == "read":
    read_state(out)
else:
    sys.exit("unknown step " + step)
print(json.dumps(out, default=str))
