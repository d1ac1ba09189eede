"""Drives ipcamd's ONVIF services with the onvif-zeep client (PyPI `onvif-zeep`, which
ships the ONVIF WSDLs and validates every answer against them through zeep).

Usage: onvif_zeep_flow.py HOST PORT USER PASSWORD
Prints one JSON object with what the client learnt; exits non-zero on any SOAP error.
"""
import json
import sys

from onvif import ONVIFCamera

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
cam = ONVIFCamera(host, port, user, password)
dev = cam.devicemgmt
info = dev.GetDeviceInformation()
out["manufacturer"] = info.Manufacturer
out["model"] = info.Model
t = dev.GetSystemDateAndTime().UTCDateTime
out["utc_year"] = t.Date.Year
# Search, recording and replay are not in GetCapabilities' top level, which is all this
# client reads: take their addresses from GetServices, as a VMS does.
services = dev.GetServices(False)
out["services"] = sorted(s.Namespace for s in services)
for s in services:
    cam.xaddrs[s.Namespace] = s.XAddr
out["scopes"] = [s.ScopeItem for s in dev.GetScopes()]
out["hostname"] = dev.GetHostname().Name

media = cam.create_media_service()
profiles = media.GetProfiles()
out["profiles"] = [p.token for p in profiles]
token = profiles[0].token
out["video_encoding"] = profiles[0].VideoEncoderConfiguration.Encoding
out["width"] = profiles[0].VideoEncoderConfiguration.Resolution.Width


def stream_uri(protocol):
    req = media.create_type("GetStreamUri")
    req.ProfileToken = token
    req.StreamSetup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": protocol}}
    return media.GetStreamUri(req).Uri


out["rtsp_uri"] = stream_uri("RTSP")
out["http_uri"] = stream_uri("HTTP")
out["snapshot_uri"] = media.GetSnapshotUri({"ProfileToken": token}).Uri
out["audio_outputs"] = [o.token for o in media.GetAudioOutputs()]
out["audio_decoders"] = [c.token for c in media.GetAudioDecoderConfigurations()]
opts = media.GetAudioDecoderConfigurationOptions({"ProfileToken": token})
out["g711_bitrates"] = list(opts.G711DecOptions.Bitrate.Items) if opts.G711DecOptions else []

search = cam.create_search_service()
summary = search.GetRecordingSummary()
out["number_recordings"] = summary.NumberRecordings
st = search.FindRecordings({"Scope": {}, "KeepAliveTime": "PT10S"})
res = search.GetRecordingSearchResults({"SearchToken": st, "WaitTime": "PT1S"})
out["search_state"] = res.SearchState
out["recordings"] = [
    {
        "token": r.RecordingToken,
        "tracks": [tr.TrackToken for tr in r.Track],
        "earliest": str(r.EarliestRecording),
        "latest": str(r.LatestRecording),
    }
    for r in (res.RecordingInformation or [])
]
replay = cam.create_replay_service()
if out["recordings"]:
    req = replay.create_type("GetReplayUri")
    req.RecordingToken = out["recordings"][0]["token"]
    req.StreamSetup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    out["replay_uri"] = replay.GetReplayUri(req)
caps = replay.GetServiceCapabilities()
out["replay_reverse"] = bool(caps.ReversePlayback)
print(json.dumps(out, default=str))
