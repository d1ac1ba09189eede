#!/usr/bin/env python3
"""A minimal ONVIF replay reader for bench/replay.sh (plain sockets, no RTP decoding).

    replay_reader.py URL SECONDS [RANGE] [RATE_CONTROL] [copy]

Sets up every track of URL over TCP interleaved, PLAYs with `Require: onvif-replay`,
`Range: RANGE` and `Rate-Control: RATE_CONTROL` (default no), then reads for SECONDS or
until the server has sent T on every track that sent data. Counts bytes, RTP packets and
access units (packets carrying the 0xABAC extension), and the time from sending PLAY to
the first media byte. With "copy", URL is host:port of a plain TCP sender and only the
read loop runs: the loopback limit of this same reader. Prints one JSON line.
"""
import json
import socket
import struct
import sys
import time


def main():
    url, seconds = sys.argv[1], float(sys.argv[2])
    rng = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    rc = sys.argv[4] if len(sys.argv) > 4 else "no"
    if "copy" in sys.argv[5:]:
        host, port = url.split(":")
        s = socket.create_connection((host, int(port)))
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            d = s.recv(1 << 20)
            if not d:
                break
            n += len(d)
        dt = time.monotonic() - t0
        print(json.dumps({"bytes": n, "seconds": dt, "mb_s": n / dt / 1e6}))
        return
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    buf = b""
    cseq = [0]

    def req(line, headers=""):
        nonlocal buf
        cseq[0] += 1
        s.sendall(f"{line} RTSP/1.0\r\nCSeq: {cseq[0]}\r\n{headers}\r\n".encode())
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, buf = buf.partition(b"\r\n\r\n")
        head = head.decode()
        cl = [int(x.split(":")[1]) for x in head.split("\r\n") if x.lower().startswith("content-length")]
        body = b""
        if cl:
            while len(buf) < cl[0]:
                buf += s.recv(65536)
            body, buf = buf[:cl[0]], buf[cl[0]:]
        return head, body.decode()

    base = f"rtsp://{hostport}/{path}"
    _, sdp = req(f"DESCRIBE {base}")
    controls = [l.split(":", 1)[1].strip() for l in sdp.split("\r\n") if l.startswith("a=control:trackID")]
    session = None
    for i, c in enumerate(controls):
        h = f"Transport: RTP/AVP/TCP;unicast;interleaved={2*i}-{2*i+1}\r\nRequire: onvif-replay\r\n"
        if session:
            h += f"Session: {session}\r\n"
        head, _ = req(f"SETUP {base}/{c}", h)
        session = [x.split(":", 1)[1].split(";")[0].strip() for x in head.split("\r\n") if x.startswith("Session")][0]
    h = f"Session: {session}\r\nRequire: onvif-replay\r\nRate-Control: {rc}\r\n"
    if rng:
        h += f"Range: {rng}\r\n"
    t_play = time.monotonic()
    head, _ = req(f"PLAY {base}/", h)
    status = int(head.split()[1])
    first = None
    nbytes = packets = units = 0
    terminal = set()
    data_tracks = set()
    t0 = time.monotonic()
    s.settimeout(2)
    pos = 0
    try:
        while time.monotonic() - t0 < seconds:
            while len(buf) - pos < 4 or len(buf) - pos < 4 + struct.unpack_from("!H", buf, pos + 2)[0]:
                buf = buf[pos:]
                pos = 0
                d = s.recv(1 << 20)
                if not d:
                    raise EOFError
                if first is None:
                    first = time.monotonic() - t_play
                buf += d
            ch = buf[pos + 1]
            n = struct.unpack_from("!H", buf, pos + 2)[0]
            p0 = pos + 4
            pos += 4 + n
            nbytes += n + 4
            if ch % 2:
                continue
            packets += 1
            data_tracks.add(ch)
            if buf[p0] & 0x10 and buf[p0 + 12] == 0xAB and buf[p0 + 13] == 0xAC:
                units += 1
                if buf[p0 + 24] & 0x10:
                    terminal.add(ch)
                    if terminal >= data_tracks:
                        break
    except (socket.timeout, EOFError):
        pass
    dt = time.monotonic() - t0
    print(json.dumps({"status": status, "first_byte_ms": (first or 0) * 1000, "bytes": nbytes,
                      "packets": packets, "units": units, "seconds": dt,
                      "mb_s": nbytes / dt / 1e6, "units_s": units / dt, "terminal": len(terminal)}))


if __name__ == "__main__":
    main()
