"""Drives Debian's headless Chromium (Selenium + chromedriver) against ipcamd's web console.

Usage: browser.py URL ACTION [--screenshot FILE] [--tone WAV] [--talk-seconds S] [--wait S]

ACTION:
  live   open URL (the console), wait until camera tile CAMERA plays, and print JSON:
         transport, first frame time, currentTime progress, and whether a canvas grab of
         the frame has detail (not a blank picture).
  talk   open URL (the console with ?camera=NAME), press the talk button (toggle), keep
         talking for --talk-seconds with the fake microphone playing --tone, stop, and
         print JSON with the talk state and the page's note.
  timeline open URL (the console with ?camera=NAME of a recorded camera), wait for the
         timeline's sections, play the recording from 1 s after the first section's start
         (as a click there does) and check that it plays (currentTime advances, detail).
  viewer open URL (the console with ?camera=NAME) as a user who may not talk: succeeds
         when the video plays, the talk button is hidden, and a talk request made anyway
         (from the page, with the page's credentials) is refused; prints its status.
A URL with USER:PASSWORD@ logs in: the browser answers the server's Digest challenges.
Exit code 0 when the page did what was asked; the JSON says what was seen either way.
"""
import argparse
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def browser(tone):
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", "--window-size=1280,900",
        # Loopback host candidates (the server announces 127.0.0.1 in tests).
        "--allow-loopback-in-peer-connection",
    ]:
        o.add_argument(a)
    if tone:
        o.add_argument("--use-file-for-fake-audio-capture=" + tone)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


FRAME_STATE = """
const name = arguments[0];
const v = name ? document.querySelector('#tile-' + name + ' video') : document.getElementById('largeVideo');
const st = name ? (window.ipcamd && window.ipcamd.tiles[name]) : (window.ipcamd && window.ipcamd.large);
if (!v || !st) return null;
let detail = null;
if (v.videoWidth > 0) {
  const c = document.createElement('canvas');
  c.width = 160; c.height = 90;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, c.width, c.height);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let min = 255, max = 0, sum = 0;
  for (let i = 0; i < d.length; i += 4) { const y = (d[i] + d[i+1] + d[i+2]) / 3; min = Math.min(min, y); max = Math.max(max, y); sum += y; }
  detail = { min, max, mean: sum / (d.length / 4) };
}
return { transport: st.transport, firstFrameMs: st.firstFrameMs, error: st.error || null,
         webrtcError: st.webrtcError || null, currentTime: v.currentTime,
         width: v.videoWidth, height: v.videoHeight, detail };
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("action", choices=["live", "talk", "viewer", "timeline"])
    ap.add_argument("--camera", default="cam1")
    ap.add_argument("--screenshot")
    ap.add_argument("--tone")
    ap.add_argument("--talk-seconds", type=float, default=3.0)
    ap.add_argument("--wait", type=float, default=20.0)
    a = ap.parse_args()
    d = browser(a.tone)
    out = {}
    ok = False
    try:
        d.get(a.url)
        tile = a.camera if a.action == "live" else None
        deadline = time.time() + a.wait
        first = None
        while time.time() < deadline:
            s = d.execute_script(FRAME_STATE, tile)
            if s and s["width"] > 0 and s["currentTime"] > 0:
                if first is None:
                    first = s
                elif s["currentTime"] > first["currentTime"] + 1.0:
                    out["live"] = s
                    out["advanced_s"] = s["currentTime"] - first["currentTime"]
                    break
            out["last"] = s
            time.sleep(0.2)
        playing = "live" in out
        if a.action == "timeline" and playing:
            t0 = time.time()
            while time.time() < t0 + 10 and not d.execute_script("return (window.ipcamd.spans || []).length"):
                time.sleep(0.2)
            out["spans"] = d.execute_script("return window.ipcamd.spans")
            out["timeline_note"] = d.execute_script("return document.getElementById('timelineNote').textContent")
            if out["spans"]:
                d.execute_script("window.ipcamd.playRecording(Date.parse(window.ipcamd.spans[0].start) + 1000)")
                first = None
                t0 = time.time()
                while time.time() < t0 + 15:
                    s = d.execute_script(FRAME_STATE, None)
                    if s and s["transport"] == "recording" and s["width"] > 0 and s["currentTime"] > 0:
                        if first is None:
                            first = s
                        elif s["currentTime"] > first["currentTime"] + 1.0:
                            out["recording"] = s
                            out["src"] = d.execute_script("return document.getElementById('largeVideo').src")
                            break
                    time.sleep(0.2)
        if a.action == "timeline":
            det = out.get("recording", {}).get("detail")
            ok = bool(det and det["max"] - det["min"] > 40)
        elif a.action == "live":
            det = playing and out["live"]["detail"]
            ok = bool(playing and det and det["max"] - det["min"] > 40)
        elif a.action == "viewer":
            out["me"] = d.execute_script("return window.ipcamd.me")
            out["button_visible"] = d.execute_script("return !document.getElementById('talk').hidden")
            out["talk_request_status"] = d.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "if (!window.ipcamd.large) { done('no large view'); return; }"
                "fetch(location.origin + window.ipcamd.large.location + '/talk', {method: 'POST'})"
                ".then(r => done(r.status)).catch(e => done(String(e)));")
            ok = playing and not out["button_visible"] and out["talk_request_status"] in (401, 403)
        else:
            out["me"] = d.execute_script("return window.ipcamd.me")
            out["button_visible"] = d.execute_script("return !document.getElementById('talk').hidden")
            if playing and out["button_visible"]:
                d.execute_script("window.ipcamd.toggleTalk()")
                t0 = time.time()
                while time.time() < t0 + 5 and d.execute_script("return window.ipcamd.talk") is None:
                    time.sleep(0.05)
                out["talk_after_press"] = d.execute_script("return window.ipcamd.talk")
                time.sleep(a.talk_seconds)
                d.execute_script("window.ipcamd.toggleTalk()")
                time.sleep(0.5)
            out["talk"] = d.execute_script("return window.ipcamd.talk")
            out["note"] = d.execute_script("return document.getElementById('talkNote').textContent")
            ok = out.get("talk_after_press") == "talking"
        out["page_status"] = d.execute_script("return document.getElementById('status').textContent")
        if a.screenshot:
            d.save_screenshot(a.screenshot)
        out["console_log"] = [e.get("message") for e in (d.get_log("browser") or [])][-20:]
    except Exception as e:  # noqa: BLE001 - report whatever went wrong as JSON
        out["exception"] = repr(e)
    finally:
        d.quit()
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
