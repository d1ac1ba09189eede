"""Drives ipcamd's ONVIF Event service with the onvif-zeep client (PyPI `onvif-zeep`,
whose WSDLs make zeep check every answer): GetEventProperties, CreatePullPointSubscription,
PullMessages until motion events arrive (and measures how long after a motion period's
start its event reached us), a talk session (the command in $IPCAMD_TALK_CMD, a JSON list)
seen as Talk Active true then false, SetSynchronizationPoint, Renew, Unsubscribe, and the
fault of a PullMessages after Unsubscribe.

Usage: onvif_zeep_events.py HOST PORT USER PASSWORD
Prints one JSON object with what the client saw; exits non-zero on any unexpected error.
"""
import datetime
import json
import os
import subprocess
import sys
import time

from onvif import ONVIFCamera
from onvif.exceptions import ONVIFError
from zeep.exceptions import Fault
from zeep.plugins import HistoryPlugin

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
out = {}
cam = ONVIFCamera(host, port, user, password)
events = cam.create_events_service()
caps = events.GetServiceCapabilities()
out["ws_pull_point_support"] = bool(caps.WSPullPointSupport)
out["max_pull_points"] = caps.MaxPullPoints
props = events.GetEventProperties()
out["topic_dialects"] = list(props.TopicExpressionDialect)
out["fixed_topic_set"] = bool(props.FixedTopicSet)
out["topic_set_roots"] = sorted(
    e.tag.split("}")[-1] for e in props.TopicSet._value_1
)

sub = events.CreatePullPointSubscription({"InitialTerminationTime": "PT60S"})
address = sub.SubscriptionReference.Address._value_1
out["address"] = address
out["initial_life_s"] = (sub.TerminationTime - sub.CurrentTime).total_seconds()
cam.xaddrs["http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"] = address
pullpoint = cam.create_pullpoint_service()
# zeep drops the text of wsnt:Topic (mixed content): the messages are read from the
# envelope as received, which zeep has checked against the WSDL meanwhile.
history = HistoryPlugin()
pullpoint.zeep_client.plugins.append(history)
WSNT = "{http://docs.oasis-open.org/wsn/b-2}"

TT = "{http://www.onvif.org/ver10/schema}"


def parse(msg):
    """(topic, operation, utc time, source items, data items) of a NotificationMessage
    element."""
    topic = msg.find(f"{WSNT}Topic").text.strip()
    m = msg.find(f"{WSNT}Message/{TT}Message")
    items = lambda tag: {
        i.get("Name"): i.get("Value") for i in m.findall(f"{TT}{tag}/{TT}SimpleItem")
    }
    t = datetime.datetime.fromisoformat(m.get("UtcTime").replace("Z", "+00:00"))
    return topic, m.get("PropertyOperation"), t, items("Source"), items("Data")


def pull(timeout_s=5, limit=100):
    req = {"Timeout": datetime.timedelta(seconds=timeout_s), "MessageLimit": limit}
    started = time.time()
    r = pullpoint.PullMessages(req)
    got = time.time()
    raw = history.last_received["envelope"].iter(f"{WSNT}NotificationMessage")
    msgs = [parse(m) for m in raw]
    assert len(msgs) == len(r.NotificationMessage or [])
    return msgs, got, got - started, r


seen = []
motion_latencies_ms = []
initialized = set()
changes = 0
deadline = time.time() + 20
while time.time() < deadline and changes < 4:
    msgs, got, _, _ = pull()
    for topic, op, t, src, data in msgs:
        seen.append([topic, op, src, data])
        if op == "Initialized":
            initialized.add(topic)
        if topic.endswith("VideoSource/MotionAlarm") and op == "Changed":
            changes += 1
            motion_latencies_ms.append(
                (got - t.timestamp()) * 1000.0
            )
out["initialized_topics"] = sorted(initialized)
out["motion_changes"] = changes
out["motion_latency_ms"] = motion_latencies_ms
out["motion_states"] = [
    d.get("State") for tp, op, s, d in seen if tp.endswith("MotionAlarm")
]
out["cell_motion"] = [
    d.get("IsMotion") for tp, op, s, d in seen if tp.endswith("CellMotionDetector/Motion")
]
out["connection"] = [
    [s, d] for tp, op, s, d in seen if tp.endswith("Device/Camera/Connection")
]
out["recording"] = [
    [s, d] for tp, op, s, d in seen if tp.endswith("RecordingConfig/JobState")
]

# Talk: a session on the backchannel shows as Active true, then false.
talk_cmd = json.loads(os.environ.get("IPCAMD_TALK_CMD", "[]"))
talk = []
if talk_cmd:
    proc = subprocess.Popen(talk_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while time.time() < deadline and talk[-1:] != ["false"]:
        msgs, _, _, _ = pull()
        for topic, op, t, src, data in msgs:
            if topic.endswith("Device/Camera/Talk") and op == "Changed":
                talk.append(data.get("Active"))
    _, err = proc.communicate(timeout=30)
    out["talk_exit"] = proc.returncode
out["talk"] = talk

# An empty long poll lasts its timeout.
pull(timeout_s=0)  # drain
msgs, _, waited, r = pull(timeout_s=1)
out["idle_pull_s"] = round(waited, 2)

# SetSynchronizationPoint: the current state again, as Initialized.
pullpoint.SetSynchronizationPoint()
msgs, _, _, _ = pull(timeout_s=0, limit=1000)
out["sync_ops"] = sorted({op for _, op, _, _, _ in msgs if op == "Initialized"})
out["sync_topics"] = sorted({tp for tp, op, _, _, _ in msgs if op == "Initialized"})

# Renew and Unsubscribe are the subscription manager's (same address).
manager = pullpoint.zeep_client.create_service(
    "{http://www.onvif.org/ver10/events/wsdl}SubscriptionManagerBinding", address
)
renewed = manager.Renew(TerminationTime="PT120S")
out["renew_life_s"] = round(
    (renewed.TerminationTime - renewed.CurrentTime).total_seconds()
)
manager.Unsubscribe()
try:
    pull(timeout_s=0)
    out["pull_after_unsubscribe"] = "answered"
except (Fault, ONVIFError) as f:
    # onvif-zeep wraps the SOAP fault in its ONVIFError.
    out["pull_after_unsubscribe"] = "fault"
    out["pull_after_unsubscribe_reason"] = str(f)
print(json.dumps(out, default=str))
