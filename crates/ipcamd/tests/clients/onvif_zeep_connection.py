"""ipcamd's ONVIF events of a camera going offline and back, seen by onvif-zeep: a
PullPoint subscription is made, then the command in $IPCAMD_OFFLINE_CMD (a JSON list)
takes the camera's source away, and the client pulls until it sees
`tns1:Device/Camera/Connection` Online=false and the recording's
`tns1:RecordingConfig/JobState` Idle; then $IPCAMD_ONLINE_CMD brings it back, and the
client pulls until Online=true and JobState Active.

Usage: onvif_zeep_connection.py HOST PORT USER PASSWORD
Prints one JSON object: the (topic, data) of every Changed message, and how long each
transition took to be seen; exits non-zero on any unexpected error.
"""
import datetime
import json
import os
import subprocess
import sys
import time

from onvif import ONVIFCamera
from zeep.plugins import HistoryPlugin

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
WSNT = "{http://docs.oasis-open.org/wsn/b-2}"
TT = "{http://www.onvif.org/ver10/schema}"

cam = ONVIFCamera(host, port, user, password)
events = cam.create_events_service()
sub = events.CreatePullPointSubscription({"InitialTerminationTime": "PT120S"})
address = sub.SubscriptionReference.Address._value_1
cam.xaddrs["http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"] = address
pullpoint = cam.create_pullpoint_service()
history = HistoryPlugin()
pullpoint.zeep_client.plugins.append(history)


def pull():
    r = pullpoint.PullMessages({"Timeout": datetime.timedelta(seconds=2), "MessageLimit": 100})
    out = []
    for m in history.last_received["envelope"].iter(f"{WSNT}NotificationMessage"):
        topic = m.find(f"{WSNT}Topic").text.strip()
        msg = m.find(f"{WSNT}Message/{TT}Message")
        data = {i.get("Name"): i.get("Value") for i in msg.findall(f"{TT}Data/{TT}SimpleItem")}
        out.append((topic, msg.get("PropertyOperation"), data))
    assert len(out) == len(r.NotificationMessage or [])
    return out


def wait_for(want, limit_s):
    """Pulls until every (topic suffix, data key, value) in `want` was seen Changed."""
    started = time.time()
    missing = set(want)
    while missing and time.time() < started + limit_s:
        for topic, op, data in pull():
            seen.append([topic, op, data])
            for w in list(missing):
                if op == "Changed" and topic.endswith(w[0]) and data.get(w[1]) == w[2]:
                    missing.discard(w)
    return sorted(missing), round(time.time() - started, 2)


seen = []
result = {}
# The initial state first (Initialized messages).
for topic, op, data in pull():
    seen.append([topic, op, data])
subprocess.run(json.loads(os.environ["IPCAMD_OFFLINE_CMD"]), check=True)
result["offline_missing"], result["offline_seen_after_s"] = wait_for(
    {("Device/Camera/Connection", "Online", "false"), ("RecordingConfig/JobState", "State", "Idle")}, 20)
subprocess.run(json.loads(os.environ["IPCAMD_ONLINE_CMD"]), check=True)
result["online_missing"], result["online_seen_after_s"] = wait_for(
    {("Device/Camera/Connection", "Online", "true"), ("RecordingConfig/JobState", "State", "Active")}, 30)
result["changed"] = [[t, d] for t, op, d in seen if op == "Changed"]
print(json.dumps(result))
sys.exit(0 if not result["offline_missing"] and not result["online_missing"] else 1)
