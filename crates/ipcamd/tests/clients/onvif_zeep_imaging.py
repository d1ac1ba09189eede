"""Adjusts the synthetic camera's picture with the onvif-zeep client (its imaging.wsdl,
ver20) and measures the picture.

Usage: onvif_zeep_imaging.py HOST PORT USER PASSWORD STEP
STEP:
  adjust    finds the Imaging service in GetServices (and GetCapabilities), the video
            source token in the profile; GetServiceCapabilities, GetOptions,
            GetImagingSettings, GetMoveOptions, GetStatus, Move (a fault is expected);
            the mean luma of a snapshot (GetSnapshotUri, HTTP Digest, decoded by ffmpeg)
            neutral, after SetImagingSettings Brightness 90, after Brightness 10;
            Brightness 150 (a fault is expected); then Brightness 70 with
            ForcePersistence true and Contrast 30 with ForcePersistence false; a file
            camera "f", if configured: its settings, options, and a refused change
  refused   as a viewer: GetImagingSettings (allowed), SetImagingSettings (a fault is
            expected)
  read      GetImagingSettings
Prints one JSON object; exits non-zero on an unexpected SOAP error.
"""
import json
import subprocess
import sys
import time

import requests
from requests.auth import HTTPDigestAuth
from onvif import ONVIFCamera, ONVIFError
from zeep.exceptions import Fault

host, port, user, password, step = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
IMAGING_NS = "http://www.onvif.org/ver20/imaging/wsdl"
out = {}
cam = ONVIFCamera(host, port, user, password)
services = cam.devicemgmt.GetServices(True)
for s in services:
    cam.xaddrs[s.Namespace] = s.XAddr
out["imaging_xaddr"] = next((s.XAddr for s in services if s.Namespace == IMAGING_NS), None)
media = cam.create_media_service()
imaging = cam.create_imaging_service()
profile = media.GetProfiles()[0]
source = profile.VideoSourceConfiguration.SourceToken
out["source"] = source


def fault(call):
    """Runs call; returns (True, the fault's text and subcodes) when it faults, (False,
    None) if not."""
    try:
        call()
        return False, None
    except ONVIFError as e:
        # onvif-zeep wraps zeep's Fault.
        f = e.__context__
        if not isinstance(f, Fault):
            raise
        return True, "%s %s" % (f.message, [str(c) for c in (f.subcodes or [])])


def settings():
    s = imaging.GetImagingSettings({"VideoSourceToken": source})
    return {"brightness": s.Brightness, "color_saturation": s.ColorSaturation,
            "contrast": s.Contrast, "sharpness": s.Sharpness}


def set_settings(values, persist):
    imaging.SetImagingSettings({"VideoSourceToken": source, "ImagingSettings": values,
                                "ForcePersistence": persist})


def mean_luma():
    """Mean luma (0..255) of a snapshot taken after the next keyframe (the test camera
    makes one every 500 ms; the snapshot is the latest keyframe)."""
    time.sleep(1.2)
    uri = media.GetSnapshotUri({"ProfileToken": profile.token}).Uri
    jpeg = requests.get(uri, auth=HTTPDigestAuth(user, password), timeout=30)
    jpeg.raise_for_status()
    gray = subprocess.run(["ffmpeg", "-v", "error", "-f", "image2pipe", "-i", "pipe:0",
                           "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"],
                          input=jpeg.content, capture_output=True, check=True, timeout=30).stdout
    return sum(gray) / len(gray)


if step == "adjust":
    caps = cam.devicemgmt.GetCapabilities({"Category": "All"})
    out["imaging_in_capabilities"] = caps.Imaging.XAddr if caps.Imaging is not None else None
    out["image_stabilization"] = imaging.GetServiceCapabilities().ImageStabilization
    o = imaging.GetOptions({"VideoSourceToken": source})
    out["options"] = {name: [getattr(o, name).Min, getattr(o, name).Max]
                      for name in ["Brightness", "ColorSaturation", "Contrast", "Sharpness"]
                      if getattr(o, name) is not None}
    out["settings_before"] = settings()
    mo = imaging.GetMoveOptions({"VideoSourceToken": source})
    out["move_options"] = [n for n in ["Absolute", "Relative", "Continuous"]
                           if mo is not None and getattr(mo, n) is not None]
    # An empty Status: zeep makes None of it, or an object without FocusStatus20.
    st = imaging.GetStatus({"VideoSourceToken": source})
    out["focus_status"] = getattr(st, "FocusStatus20", None) is not None
    out["move_refused"] = fault(lambda: imaging.Move(
        {"VideoSourceToken": source, "Focus": {"Continuous": {"Speed": 0.5}}}))
    out["luma_neutral"] = mean_luma()
    set_settings({"Brightness": 90}, True)
    out["luma_90"] = mean_luma()
    set_settings({"Brightness": 10}, True)
    out["luma_10"] = mean_luma()
    out["settings_10"] = settings()
    out["out_of_range_refused"] = fault(lambda: set_settings({"Brightness": 150}, True))
    set_settings({"Brightness": 70}, True)
    set_settings({"Contrast": 30}, False)
    out["settings_after"] = settings()
    # A camera whose picture is not ipcamd's (the test's file camera "f").
    if any(p.token == "f" for p in media.GetProfiles()):
        f = imaging.GetImagingSettings({"VideoSourceToken": "VideoSource_f"})
        out["file_settings"] = [f.Brightness, f.ColorSaturation, f.Contrast]
        fo = imaging.GetOptions({"VideoSourceToken": "VideoSource_f"})
        out["file_brightness_options"] = [fo.Brightness.Min, fo.Brightness.Max]
        out["file_refused"] = fault(lambda: imaging.SetImagingSettings(
            {"VideoSourceToken": "VideoSource_f", "ImagingSettings": {"Brightness": 60}}))
elif step == "refused":
    out["settings"] = settings()
    out["set_refused"] = fault(lambda: set_settings({"Brightness": 80}, True))
elif step == "read":
    out["settings"] = settings()
else:
    sys.exit("unknown step %r" % step)
print(json.dumps(out))
