"""The per-second recorder: what counts as unavailable, rejected, wrongly accepted; its file.

Importing Locust monkey-patches the process (gevent), so the checks run in a Python
process of their own, as Locust itself would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKS = '''
import json, sys, time
from pathlib import Path
from types import SimpleNamespace
from loadtests.control import Window
from loadtests.timeline import Timeline, classify, percentile

cases = [
    ("/api/me", 200, False, "ok"),
    ("/api/me", 503, True, "unavailable"),
    ("/api/me", 401, True, "rejected"),
    ("/api/me (replay)", 401, False, "ok"),  # a logged-out credential refused: right
    ("/api/me (revoked replay)", 401, False, "ok"),
    ("/api/me (revoked replay)", 200, True, "wrongly_accepted"),
    ("/api/me", 0, True, "failed"),  # no answer at all
    ("/api/items", 500, True, "failed"),
]
for name, status, is_failure, count in cases:
    assert classify(name, status, is_failure) == count, (name, status)

values = [float(v) for v in range(1, 101)]
assert percentile(values, 0.5) == 50 and percentile(values, 0.99) == 99
assert percentile([7.0], 0.99) == 7

folder = Path(sys.argv[1])
timeline = Timeline()
now = time.time()
window = Window(3, str(folder), now - 2.5, now - 1.5, now + 30)
timeline.window = window  # as on_window does, without its gevent timer
answer = SimpleNamespace(status_code=200)
for latency in (1.0, 2.0, 3.0):
    timeline.on_request("GET", "/api/me", latency, None, answer)
timeline.on_request("GET", "/api/me", 900.0, RuntimeError("503"),
                    SimpleNamespace(status_code=503))
rows = timeline.rows()
assert len(rows) == 1 and rows[0]["second"] == 1, rows
assert (rows[0]["ok"], rows[0]["unavailable"]) == (3, 1), rows
assert rows[0]["max_ms"] == 900.0 and rows[0]["p50_ms"] == 2.0, rows
timeline.save(window)
saved = json.loads(next(folder.glob("timeline-*.json")).read_text())
assert saved["format"] == "authbench-timeline/1" and saved["seconds"] == rows
timeline.on_request("GET", "/api/me", 1.0, None, answer)  # window over: not counted
assert timeline.window is None
print("ok")
'''


def test_the_recorder_counts_each_request_in_its_second(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHECKS, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
