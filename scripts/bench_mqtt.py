#!/usr/bin/env python3
"""MQTT QoS 1 ingest (issue 3): `emberline-sim mqtt-load` against one release agent (bridge
unreachable: it buffers, every PUBACK after the SQLite commit). Run via scripts/bench-mqtt."""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, record  # noqa: E402
from bench_ingest import start, stop  # noqa: E402

TARGET = os.environ["CARGO_TARGET_DIR"] + "/release"
TITLE = "MQTT QoS1 ingest (issue 3)"


def run(connections, messages):
    work = tempfile.mkdtemp(prefix="emberline-mqtt-")
    try:
        http, mqtt = free_port(), free_port()
        agent = start([f"{TARGET}/emberline-agent", "run", "--agent-id", "bench", "--http-listen",
                       f"127.0.0.1:{http}", "--mqtt-listen", f"127.0.0.1:{mqtt}", "--no-alerts",
                       "--buffer-path", f"{work}/buffer.db", "--buffer-max-bytes", str(4 << 30),
                       "--bridge-url", f"http://127.0.0.1:{free_port()}"], mqtt)
        out = subprocess.run([f"{TARGET}/emberline-sim", "mqtt-load", "--port", str(mqtt), "--connections",
                              str(connections), "--messages", str(messages), "--qos", "1", "--json", "--quiet"],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        stop(agent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = json.loads(out.strip().splitlines()[-1])
    print(f"  {connections} connections: {summary['acked_per_s']:,.0f} acknowledged/s, p99 "
          f"{summary['latency_p99_ms']:.0f} ms, failed {summary['failed']}", flush=True)
    return summary


def main(messages):
    rows = [(c, run(c, messages)) for c in (1000, 100)]
    lines = [
        f"## {TITLE}", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}, {os.cpu_count()} cores "
        f"(load average {os.getloadavg()[0]:.1f}), generator and a fresh release agent on this machine (bridge "
        "unreachable, so it buffers; every PUBACK after the SQLite commit). "
        f"`emberline-sim mqtt-load --connections N --messages {messages} --qos 1`. Command: `./scripts/bench-mqtt`.",
        "",
        "| connections | acknowledged msgs/s | p50 | p99 | failed | goal |",
        "|---|---|---|---|---|---|",
        *[f"| {c:,} | {s['acked_per_s']:,.0f} | {s['latency_p50_ms']:.0f} ms | {s['latency_p99_ms']:.0f} ms | "
          f"{s['failed']} | {'≥ 30,000 msgs/s' if c == 1000 else '—'} |" for c, s in rows],
        "",
    ]
    record(TITLE, "\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
