#!/usr/bin/env python3
"""Picks at most CAP inputs of a fuzz corpus for tests/fuzz_corpus, greedily by edge coverage.

  B=target/x86_64-unknown-linux-gnu/release
  mkdir -p /tmp/cover /tmp/none
  $B/TARGET -set_cover_merge=1 -use_counters=0 /tmp/cover corpus/TARGET   # a set cover
  $B/TARGET -merge=1 -use_counters=0 -merge_control_file=/tmp/ctl /tmp/none /tmp/cover
  python3 pick_corpus.py /tmp/ctl CAP ../tests/fuzz_corpus/TARGET

Prints how many of the set cover's edges the picked inputs still reach.
"""
import os
import shutil
import sys

control, cap, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(control).read().split("\n")
count = int(lines[0])
files = lines[2 : 2 + count]
edges = {}
for line in lines[2 + count :]:
    fields = line.split()
    if fields and fields[0] == "COV":
        edges[int(fields[1])] = set(map(int, fields[2:]))
every = set().union(*edges.values())
chosen, covered = [], set()
while len(chosen) < cap:
    # The most new edges; the smaller file on a tie.
    best = max(edges, key=lambda i: (len(edges[i] - covered), -os.path.getsize(files[i])))
    if not edges[best] - covered:
        break
    chosen.append(best)
    covered |= edges[best]
print(f"{len(chosen)} inputs reach {len(covered)} of {len(every)} edges")
os.makedirs(out, exist_ok=True)
for i in chosen:
    shutil.copy(files[i], out)
