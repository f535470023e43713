#!/usr/bin/env python3
# ftscmp.py N (writes /tmp/ftscmp.db): the same N synthetic 4 KiB-like documents in FTS4 and FTS5; a common word
# ("mmmm") in every document, "mmmmr" (rare, 40 documents) sorting right after it;
# times a MATCH of rare terms near and far from the common one, median of 50.
import random, sqlite3, statistics, sys, time
N = int(sys.argv[1])
random.seed(1)
vocab = ["w%05d" % i for i in range(20000)]
db = sqlite3.connect("/tmp/ftscmp.db")
db.execute("PRAGMA journal_mode=WAL")
for t, mod in (("f4", "fts4"), ("f5", "fts5")):
    db.execute(f"DROP TABLE IF EXISTS {t}")
    db.execute(f"CREATE VIRTUAL TABLE {t} USING {mod}(body)")
rare = set(random.sample(range(N), 40))
batch = []
for i in range(N):
    words = random.choices(vocab, k=150) + ["mmmm", "zzzz"]
    if i in rare:
        words.append("mmmmr")
    batch.append((" ".join(words),))
    if len(batch) == 5000:
        for t in ("f4", "f5"):
            db.executemany(f"INSERT INTO {t}(body) VALUES (?)", batch)
        db.commit()
        batch = []
if batch:
    for t in ("f4", "f5"):
        db.executemany(f"INSERT INTO {t}(body) VALUES (?)", batch)
    db.commit()
db.execute("INSERT INTO f4(f4) VALUES('optimize')")
db.execute("INSERT INTO f5(f5) VALUES('optimize')")
db.commit()
for t in ("f4", "f5"):
    for term in ("mmmmr", "mmmmq", "aaaab", "w00042"):
        ts = []
        for _ in range(50):
            t0 = time.perf_counter()
            n = db.execute(f"SELECT count(*) FROM {t} WHERE {t} MATCH ?", ('"%s"' % term,)).fetchone()[0]
            ts.append(time.perf_counter() - t0)
        print(f"N={N} {t} {term:7s} hits={n:6d} median {statistics.median(ts)*1000:.3f} ms")
