#!/usr/bin/env python3
# ftsleaf.py DB TERM: for each FTS4 segment of the table fts in DB, the blocks a lookup
# of TERM reads from the root to its leaf, and their sizes (docs/benchmarks.md, session 8).
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
target = sys.argv[2].encode()
def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i
def child(node, target):
    h, i = varint(node, 0)
    blk, i = varint(node, i)
    prev = b""; first = True
    while i < len(node):
        if first:
            n, i = varint(node, i); term = node[i:i+n]; i += n; first = False
        else:
            p, i = varint(node, i); n, i = varint(node, i); term = prev[:p] + node[i:i+n]; i += n
        if target < term: return h, blk
        prev = term; blk += 1
    return h, blk
for level, idx, start, lend, end, root in db.execute("SELECT level, idx, start_block, leaves_end_block, end_block, root FROM fts_segdir ORDER BY level, idx"):
    node, path, reads = root, [], 0
    while node and node[0] != 0:
        h, blk = child(node, target)
        node = db.execute("SELECT block FROM fts_segments WHERE blockid=?", (blk,)).fetchone()[0]
        path.append((blk, len(node))); reads += len(node)
    print(f"level {level} idx {idx}: root {len(root)} B, path {path}, bytes read {reads}")
