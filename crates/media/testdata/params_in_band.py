#!/usr/bin/env python3
"""Moves the SPS and PPS of an H.264 `avc3` MP4 from its `avcC` into its first sample.

    params_in_band.py IN.mp4 OUT.mp4

Makes testdata/h264_avc3_params_in_band.mp4 (and the fuzz seed of the same name) from
fuzz/seeds/mp4_file/h264_avc3.mp4: an `avc3` file whose decoder configuration has no
parameter sets, so a reader must find them in band (ISO/IEC 14496-15 allows this for
`avc3`). Only for a file with one video track, one chunk, `moov` before `mdat`, and 32-bit
box sizes (what that seed is). The box sizes, `stco` offsets, the first `stsz` entry and
the `mdat` size are rewritten to match.
"""
import struct
import sys

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta"}


def boxes(data, off, end, out):
    """Appends (type, offset, size) of every box under [off, end), depth first."""
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", data[off:off + 8])
        out.append((typ, off, size))
        if typ in CONTAINERS:
            boxes(data, off + 8, off + size, out)
        elif typ == b"stsd":
            boxes(data, off + 16, off + size, out)
        elif typ == b"avc3":
            boxes(data, off + 8 + 78, off + size, out)
        off += size


def find(data):
    out = []
    boxes(bytes(data), 0, len(data), out)
    return out, {t: (o, s) for t, o, s in out}


def main():
    d = bytearray(open(sys.argv[1], "rb").read())
    tree, box = find(d)
    ao, asz = box[b"avcC"]
    p = bytes(d[ao + 8:ao + asz])
    # avcC: 5 bytes, SPS count (low 5 bits), SPS list, PPS count, PPS list, the rest.
    assert p[5] & 0x1F == 1, "one SPS expected"
    sps_len = struct.unpack(">H", p[6:8])[0]
    sps = p[8:8 + sps_len]
    i = 8 + sps_len
    assert p[i] == 1, "one PPS expected"
    pps_len = struct.unpack(">H", p[i + 1:i + 3])[0]
    pps = p[i + 3:i + 3 + pps_len]
    rest = p[i + 3 + pps_len:]
    newp = p[:5] + bytes([0xE0, 0x00]) + rest
    delta = len(p) - len(newp)
    d[ao + 8:ao + asz] = newp
    for t, o, s in tree:
        if o <= ao and o + s >= ao + asz:
            struct.pack_into(">I", d, o, s - delta)
    tree, box = find(d)
    so, _ = box[b"stco"]
    assert struct.unpack(">I", d[so + 12:so + 16])[0] == 1, "one chunk expected"
    first = struct.unpack(">I", d[so + 16:so + 20])[0] - delta
    struct.pack_into(">I", d, so + 16, first)
    # SPS and PPS, 4-byte length prefixed, ahead of the first sample's NAL units.
    ins = struct.pack(">I", len(sps)) + sps + struct.pack(">I", len(pps)) + pps
    zo, _ = box[b"stsz"]
    struct.pack_into(">I", d, zo + 20, struct.unpack(">I", d[zo + 20:zo + 24])[0] + len(ins))
    mo, ms = box[b"mdat"]
    struct.pack_into(">I", d, mo, ms + len(ins))
    d[first:first] = ins
    open(sys.argv[2], "wb").write(d)


if __name__ == "__main__":
    main()
