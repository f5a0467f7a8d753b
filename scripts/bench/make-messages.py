#!/usr/bin/env python3
"""Writes N message-like rows in COPY text format (deterministic), for the COPY benchmarks.

Columns: conversation_id, message_id, sender_id, sent_at, kind, body.
"""
import random, sys, datetime

n = int(sys.argv[1])
out = sys.stdout
rng = random.Random(42)
words = ("ok see you tomorrow at the station lol thanks did you get my message "
         "meeting moved to 3pm can you call me when free sure sounds good 👍 haha yes no maybe").split()
base = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc).timestamp()
buf = []
for i in range(n):
    conv = rng.randrange(1, 50001)
    sender = rng.randrange(1, 20001)
    ts = base + i * 0.6
    t = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    body = " ".join(rng.choice(words) for _ in range(rng.randrange(2, 18)))
    kind = "media" if i % 17 == 0 else "text"
    buf.append(f"{conv}\t{(conv << 20) + i}\t{sender}\t{t}\t{kind}\t{body}\n")
    if len(buf) >= 10000:
        out.write("".join(buf)); buf = []
out.write("".join(buf))
