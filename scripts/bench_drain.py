#!/usr/bin/env python3
"""Buffer drain benchmark (issue 3): a buffer of N readings forwarded through the bridge into
Tansu, beside plain rdkafka producing the same envelopes into the same broker in the same run.
Run through scripts/bench-drain. Prints the figures and records them in docs/benchmarks.md."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, record  # noqa: E402

TARGET = os.environ["CARGO_TARGET_DIR"] + "/release"
COUNT = int(os.environ.get("BENCH_DRAIN_READINGS", "1000000"))
# Extra agent flags, e.g. BENCH_DRAIN_AGENT_ARGS="--forward-max-readings 20000".
AGENT_ARGS = os.environ.get("BENCH_DRAIN_AGENT_ARGS", "").split()
BRIDGE_ARGS = os.environ.get("BENCH_DRAIN_BRIDGE_ARGS", "").split()
# Another agent binary to drain with (an A/B against an earlier build), e.g. /tmp/agent-old.
AGENT = os.environ.get("BENCH_DRAIN_AGENT", f"{TARGET}/emberline-agent")




def wait_log(path, text, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path).read():
            return
        time.sleep(0.2)
    raise SystemExit(f"{text!r} never appeared in {path}")


def depth(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return json.load(response)["buffer_readings"]
    except (OSError, ValueError, KeyError):
        return None


def main():
    work = tempfile.mkdtemp(prefix="emberline-drain-")
    processes = []
    try:
        kafka_port = free_port()
        brokers = f"127.0.0.1:{kafka_port}"
        stack_log = f"{work}/stack.log"
        processes.append(subprocess.Popen(
            [f"{TARGET}/emberline-stack", "up", "--data-dir", f"{work}/stack", "--kafka-port", str(kafka_port)],
            stdout=open(stack_log, "w"), stderr=subprocess.STDOUT))
        wait_log(stack_log, "stack is up")
        subprocess.run([f"{TARGET}/emberline-stack", "topics", "--brokers", brokers, "--prefix", "rawbench-"],
                       check=True, capture_output=True)

        buffer = f"{work}/buffer.db"
        subprocess.run([f"{TARGET}/examples/fill_buffer", buffer, str(COUNT)], check=True, capture_output=True)
        size = os.path.getsize(buffer)

        raw = subprocess.run([f"{TARGET}/examples/raw_produce", brokers, "rawbench-raw-data", buffer],
                             check=True, capture_output=True, text=True).stdout.split()
        raw_rate, raw_failed = float(raw[3]), int(raw[1])
        print(f"raw rdkafka: {raw_rate:,.0f} records/s ({raw_failed} failed)", file=sys.stderr)

        bridge_port, agent_port = free_port(), free_port()
        processes.append(subprocess.Popen(
            [f"{TARGET}/emberline-bridge", "--listen", f"127.0.0.1:{bridge_port}", "--brokers", brokers, *BRIDGE_ARGS],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
        started = time.time()
        processes.append(subprocess.Popen(
            [AGENT, "run", "--agent-id", "bench", "--http-listen", f"127.0.0.1:{agent_port}",
             "--no-mqtt", "--no-alerts", "--buffer-path", buffer, "--buffer-max-bytes", str(20 << 30),
             "--bridge-url", f"http://127.0.0.1:{bridge_port}", "--forward-linger-ms", "5", *AGENT_ARGS],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        left = COUNT
        while left != 0:
            if time.time() - started > 900:
                raise SystemExit(f"drain did not finish in 15 minutes ({left} left)")
            time.sleep(0.25)
            current = depth(agent_port)
            left = current if current is not None else left
        seconds = time.time() - started
        drain_rate = COUNT / seconds
        print(f"drain: {drain_rate:,.0f} readings/s", file=sys.stderr)
        report(COUNT, size, raw_rate, raw_failed, drain_rate, seconds)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def report(count, size, raw_rate, raw_failed, drain_rate, seconds):
    lines = [
        "## Buffer drain into Kafka (issue 3)",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; Tansu 0.6.0 with SQLite storage, "
        f"agent, bridge and broker on this machine. A buffer of {count:,} readings ({size / 1e6:.0f} MB file) "
        "forwarded agent → bridge → `raw-data`, beside plain rdkafka producing the same envelopes (idempotent, "
        "acks=all, lz4) into the same broker in the same run. Command: `./scripts/bench-drain`.",
        "",
        "| measure | figure | goal |",
        "|---|---|---|",
        f"| plain rdkafka produce into Tansu | {raw_rate:,.0f} records/s ({raw_failed} failed) | — |",
        f"| agent buffer drained through the bridge | {drain_rate:,.0f} readings/s ({seconds:.1f} s) — **{drain_rate / raw_rate:.2f} × plain rdkafka** | ≥ 0.8 × |",
        "",
    ]
    record("Buffer drain into Kafka (issue 3)", "\n".join(lines))

if __name__ == "__main__":
    main()
