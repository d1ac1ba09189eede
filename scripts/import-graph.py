#!/usr/bin/env python3
"""Import graph of a crate's files, and a check that no files import each other in a circle.

Usage: scripts/import-graph.py [crate-src-dir ...]   (default: every crates/*/src)

For each crate it reads every `.rs` file, collects the `crate::a::b` paths it names
(in `use` items and in code), maps each to the file that defines it, and builds the graph
file -> files it uses. A parent module naming its own children is not an edge (a parent
re-exports and wires its children). It prints, per crate, the room-level graph (a room is
a top-level module: `rtsp`, `deliver`, ...) and exits 1 if any set of files imports each
other in a circle (a strongly connected component of more than one file), printing them.
"""

import os
import re
import sys


def modules(src):
    files = {}
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                parts = os.path.relpath(os.path.join(root, n), src)[:-3].split(os.sep)
                if parts[-1] in ("mod", "lib", "main"):
                    parts = parts[:-1]
                files["::".join(parts)] = os.path.join(root, n)
    return files


def graph(files):
    def target(path):
        segs = path.split("::")
        for k in range(len(segs), 0, -1):
            if "::".join(segs[:k]) in files:
                return "::".join(segs[:k])
        return None

    g = {m: set() for m in files}
    for m, p in files.items():
        text = open(p, encoding="utf-8", errors="replace").read()
        # Comments name modules too; they are not imports.
        text = re.sub(r"//[^\n]*", "", text)
        paths = re.findall(r"crate::([A-Za-z_]\w*(?:::[A-Za-z_]\w*)*)", text)
        for u in re.findall(r"use\s+crate::\{([^;]*)\};", text, re.S):
            paths += [i.strip().split("::{")[0].replace(" ", "") for i in u.split(",") if i.strip()]
        # `super::x` names something of the parent module (a sibling, or the parent).
        parent = m.rsplit("::", 1)[0] if "::" in m else ""
        for s in re.findall(r"super::([A-Za-z_]\w*(?:::[A-Za-z_]\w*)*)", text):
            paths.append(f"{parent}::{s}" if parent else s)
        for q in paths:
            t = target(q)
            if t and t != m and not t.startswith(m + "::"):
                g[m].add(t)
    return g


def cycles(g):
    idx, low, st, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(10000)

    def sc(v):
        idx[v] = low[v] = len(idx)
        st.append(v)
        on.add(v)
        for w in g[v]:
            if w not in idx:
                sc(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in idx:
            sc(v)
    return out


def main():
    dirs = sys.argv[1:] or sorted(
        os.path.join("crates", c, "src") for c in os.listdir("crates") if os.path.isdir(os.path.join("crates", c, "src"))
    )
    bad = False
    for src in dirs:
        files = modules(src)
        g = graph(files)
        rooms = {}
        for m, ts in g.items():
            r = m.split("::")[0] or "(root)"
            for t in ts:
                rt = t.split("::")[0] or "(root)"
                if rt != r:
                    rooms.setdefault(r, set()).add(rt)
        print(f"{src}: {len(files)} files")
        for r in sorted(rooms):
            print(f"  {r} -> {', '.join(sorted(rooms[r]))}")
        for c in cycles(g):
            bad = True
            print(f"  CIRCLE: {' <-> '.join(c)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
