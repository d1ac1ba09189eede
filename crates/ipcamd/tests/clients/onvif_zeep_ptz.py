"""Moves ipcamd's virtual PTZ with the onvif-zeep client and watches the picture move.

Usage: onvif_zeep_ptz.py HOST PORT USER PASSWORD

Finds the PTZ service in GetServices and the profile's PTZConfiguration in GetProfiles,
reads the node, configurations, options and status, then: grabs a frame (ffmpeg, from the
profile's stream URI) and finds the PTZ marker (the spring-green square the synthetic
camera draws at the scene's origin); ContinuousMove pan +0.5 for 1 s, Stop; GetStatus and
a new frame; then presets: AbsoluteMove, SetPreset, AbsoluteMove elsewhere, GotoPreset,
GetStatus, GetPresets, RemovePreset.
Prints one JSON object; exits non-zero on any SOAP error.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from onvif import ONVIFCamera

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
PTZ_NS = "http://www.onvif.org/ver20/ptz/wsdl"
out = {}
cam = ONVIFCamera(host, port, user, password)
services = cam.devicemgmt.GetServices(False)
for s in services:
    cam.xaddrs[s.Namespace] = s.XAddr
out["ptz_in_services"] = PTZ_NS in [s.Namespace for s in services]
caps = cam.devicemgmt.GetCapabilities({"Category": "All"})
out["ptz_in_capabilities"] = caps.PTZ is not None and caps.PTZ.XAddr.endswith("/onvif/ptz_service")
media = cam.create_media_service()
profile = media.GetProfiles()[0]
token = profile.token
out["profile_ptz_configuration"] = profile.PTZConfiguration.token if profile.PTZConfiguration else None
ptz = cam.create_ptz_service()
out["nodes"] = [n.token for n in ptz.GetNodes()]
out["configurations"] = [c.token for c in ptz.GetConfigurations()]
opts = ptz.GetConfigurationOptions({"ConfigurationToken": profile.PTZConfiguration.token})
r = opts.Spaces.ContinuousPanTiltVelocitySpace[0].XRange
out["velocity_range"] = [r.Min, r.Max]
req = media.create_type("GetStreamUri")
req.ProfileToken = token
req.StreamSetup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
uri = media.GetStreamUri(req).Uri


def status():
    s = ptz.GetStatus({"ProfileToken": token})
    return {"pan": s.Position.PanTilt.x, "tilt": s.Position.PanTilt.y, "zoom": s.Position.Zoom.x,
            "pan_tilt": s.MoveStatus.PanTilt, "zoom_status": s.MoveStatus.Zoom}


def marker():
    """Centroid (x, y) and pixel count of the spring-green marker in a fresh frame: the
    last of 25 decoded, so that no frame of the live stream's start (which may begin with
    a cached GOP) is measured."""
    frames = 25
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "f.rgb")
        subprocess.run(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", uri,
                        "-frames:v", str(frames), "-f", "rawvideo", "-pix_fmt", "rgb24", raw],
                       check=True, timeout=30)
        probe = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-i", uri,
                                "-select_streams", "v", "-show_entries", "stream=width,height",
                                "-of", "csv=p=0"], check=True, timeout=30,
                               capture_output=True, text=True).stdout.strip().split(",")
        w, h = int(probe[0]), int(probe[1])
        data = open(raw, "rb").read()
    data = data[len(data) - w * h * 3:]
    sx = sy = n = 0
    for i in range(0, len(data), 3):
        r, g, b = data[i], data[i + 1], data[i + 2]
        if g > 200 and r < 90 and 70 < b < 190:
            p = i // 3
            sx += p % w
            sy += p // w
            n += 1
    return {"x": sx / n if n else None, "y": sy / n if n else None, "n": n, "w": w, "h": h}


out["status_before"] = status()
out["marker_before"] = marker()
ptz.ContinuousMove({"ProfileToken": token,
                    "Velocity": {"PanTilt": {"x": 0.5, "y": 0.0}}})
time.sleep(1.0)
out["status_moving"] = status()
ptz.Stop({"ProfileToken": token, "PanTilt": True, "Zoom": True})
out["status_after"] = status()
time.sleep(0.5)
out["marker_after"] = marker()

# Presets round trip.
ptz.AbsoluteMove({"ProfileToken": token,
                  "Position": {"PanTilt": {"x": -0.25, "y": 0.5}, "Zoom": {"x": 0.2}}})
preset = ptz.SetPreset({"ProfileToken": token, "PresetName": "door"})
ptz.AbsoluteMove({"ProfileToken": token,
                  "Position": {"PanTilt": {"x": 0.75, "y": -0.5}, "Zoom": {"x": 0.0}}})
out["status_elsewhere"] = status()
ptz.GotoPreset({"ProfileToken": token, "PresetToken": preset})
out["status_at_preset"] = status()
out["presets"] = [{"token": p.token, "name": p.Name, "pan": p.PTZPosition.PanTilt.x,
                   "tilt": p.PTZPosition.PanTilt.y, "zoom": p.PTZPosition.Zoom.x}
                  for p in ptz.GetPresets({"ProfileToken": token})]
ptz.RemovePreset({"ProfileToken": token, "PresetToken": preset})
out["presets_after_remove"] = len(ptz.GetPresets({"ProfileToken": token}) or [])
print(json.dumps(out))
