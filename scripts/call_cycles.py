#!/usr/bin/env python3
"""The circles of calling files in engine/: how far the engine's files call
each other round.

File A calls file B when A's object uses a function B's object defines
(read with nm from the build, so macros and inline functions in headers do
not count).  A circle is a path of calls that comes back to its start
without passing a file twice; its length is the number of files on it.
Prints every file's calls, the groups of files that reach each other, and
the longest circle; with --max N, exits 1 when a circle is longer than N.

    python3 scripts/call_cycles.py [--build build] [--max 5]
"""
import argparse
import glob
import os
import subprocess
import sys


def symbols(obj):
    """(defined, used) function and data names of one object file."""
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBR":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def call_graph(build):
    objs = sorted(glob.glob(os.path.join(build, "engine", "*.o")))
    if not objs:
        sys.exit(f"no objects in {build}/engine: run make first")
    names = {o: os.path.basename(o)[:-2] + ".c" for o in objs}
    syms = {names[o]: symbols(o) for o in objs}
    owner = {}
    for f, (defined, _) in syms.items():
        for s in defined:
            owner[s] = f
    return {f: sorted({owner[s] for s in used if s in owner and owner[s] != f})
            for f, (_, used) in syms.items()}


def groups(graph):
    """Strongly connected groups of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            g = []
            while True:
                w = stack.pop()
                on.discard(w)
                g.append(w)
                if w == v:
                    break
            if len(g) > 1:
                out.append(sorted(g))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def longest_circle(graph, members):
    """The longest simple cycle within one group (a search over paths; the
    groups are a few dozen files at most)."""
    best = []
    order = sorted(members)
    for i, start in enumerate(order):
        allowed = set(order[i:])          # each circle once, from its first file
        path, seen = [start], {start}

        def walk(v):
            nonlocal best
            for w in graph[v]:
                if w == start and len(path) > len(best):
                    best = list(path)
                elif w in allowed and w not in seen:
                    path.append(w)
                    seen.add(w)
                    walk(w)
                    seen.discard(w)
                    path.pop()

        walk(start)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--max", type=int, default=0, help="fail when a circle is longer")
    ap.add_argument("-q", "--quiet", action="store_true", help="the summary only")
    a = ap.parse_args()
    graph = call_graph(a.build)
    if not a.quiet:
        for f in sorted(graph):
            print(f"{f:24} calls {' '.join(graph[f]) or '-'}")
    longest = []
    for g in groups(graph):
        c = longest_circle(graph, g)
        print(f"group of {len(g)} calling each other: {' '.join(g)}")
        if len(c) > len(longest):
            longest = c
    circle = " -> ".join(longest + longest[:1]) if longest else "none"
    print(f"longest circle: {len(longest)} files: {circle}")
    if a.max and len(longest) > a.max:
        print(f"longer than {a.max}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
