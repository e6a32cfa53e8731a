#!/usr/bin/env python3
"""Runs locust/locustfile.py headless against one release agent (bridge unreachable: it buffers,
every 202 still after the SQLite commit) and records the figures. Run via scripts/bench-locust."""
import csv
import os
import platform
import subprocess
import sys
import tempfile
import shutil
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, record  # noqa: E402
from bench_ingest import start, stop  # noqa: E402

TARGET = os.environ["CARGO_TARGET_DIR"] + "/release"


def main(users, seconds):
    work = tempfile.mkdtemp(prefix="emberline-locust-")
    try:
        port = free_port()
        agent = start([f"{TARGET}/emberline-agent", "run", "--agent-id", "locust", "--http-listen",
                       f"127.0.0.1:{port}", "--no-mqtt", "--no-alerts", "--buffer-path", f"{work}/buffer.db",
                       "--bridge-url", f"http://127.0.0.1:{free_port()}"], port)
        command = ["locust", "-f", "locust/locustfile.py", "--headless", "-u", str(users), "-r", "50",
                   "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}", "--csv", f"{work}/run",
                   "--only-summary", "IngestUser"]
        subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop(agent)
        with open(f"{work}/run_stats.csv") as f:
            total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    lines = [
        "## Locust, the reference load test (issue 6)",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}, {os.cpu_count()} cores; Locust "
        f"and one release agent on this machine (bridge unreachable, so the agent buffers; every 202 after the "
        f"SQLite commit). `locust -f locust/locustfile.py --headless -u {users} -r 50 -t {seconds}s IngestUser`; "
        "each user posts the reference payload to `/ingest` and waits 0.5–1.5 s, so the rate is set by the users "
        "(about the reference system's load), not by the agent; `./scripts/bench-ingest` measures the agent's "
        "ceiling. Command: `./scripts/bench-locust`.",
        "",
        "| measure | figure | reference system |",
        "|---|---|---|",
        f"| users | {users} | 300 |",
        f"| requests / failures | {requests:,} / **{failures}** | — |",
        f"| requests/s | **{float(total['Requests/s']):,.0f}** | 200–300 |",
        f"| latency p50 / p99 / max | {total['50%']} / {total['99%']} / {float(total['Max Response Time']):.0f} ms | — |",
        "",
    ]
    record("Locust, the reference load test (issue 6)", "\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
