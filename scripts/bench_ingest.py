#!/usr/bin/env python3
"""Agent ingest benchmarks (issue 3): prints figures and writes them to docs/benchmarks.md.

Run through scripts/bench-ingest, which builds the release binaries first. Side by side in one
run, alternating (three rounds by default, the median ratio reported): a bare axum handler that
only parses and answers 202 (the machine's HTTP ceiling) and the agent's durable /ingest; then
batched ingest, the agent's memory idle and at 5,000 readings/s, and its stripped binary size.
Load comes from oha on the same machine, over loopback only. Settings: BENCH_SECONDS (per run),
BENCH_CONNECTIONS (comma-separated counts), BENCH_ROUNDS.
"""
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, record  # noqa: E402

TARGET = os.environ["CARGO_TARGET_DIR"] + "/release"
DURATION = os.environ.get("BENCH_SECONDS", "10")
# 50 is a busy handful of devices; 300 is the reference system's Locust test (300 users), where
# group commit shares each fsync more widely.
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "50,300").split(",")
# Bare and agent alternate this many times per connection count; the ratio reported is the
# median of the rounds' ratios, every round shown.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))




def reading(i, source="bench"):
    return {
        "timestamp": "2025-05-24T18:03:11.123456Z", "latitude": 34.05, "longitude": -118.25,
        "temperature": 20 + i % 20, "humidity": 12, "wind_speed": 18.4, "wind_direction": 270.0,
        "vegetation_density": 0.82, "air_quality_index": 160.0, "source_name": f"{source}-{i % 50}",
    }


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def oha(url, body_file, content_type, seconds=DURATION, rate=None, connections=CONNECTIONS[0]):
    command = ["oha", "-z", f"{seconds}s", "-c", connections, "-m", "POST", "-H", f"content-type: {content_type}",
               "-D", body_file, "--no-tui", "--output-format", "json", url]
    if rate:
        command[1:1] = ["-q", str(rate)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    summary, latency = result["summary"], result["latencyPercentiles"]
    codes = result.get("statusCodeDistribution", {})
    return {
        "rps": summary["requestsPerSec"], "p50_ms": latency["p50"] * 1000, "p99_ms": latency["p99"] * 1000,
        "codes": codes, "command": " ".join(command),
    }


def readings_per_commit(port, accepted):
    """Readings acknowledged per buffer commit (group commit's group size), from the agent's
    `emberline_agent_buffer_commits_total`."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("emberline_agent_buffer_commits_total "):
                commits = float(line.split()[1])
                return accepted / commits if commits else 0.0
    return 0.0


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def start(command, port):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return process


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def agent_command(port, buffer_dir, durability="full"):
    return [f"{TARGET}/emberline-agent", "run", "--agent-id", "bench", "--http-listen", f"127.0.0.1:{port}",
            "--no-mqtt", "--no-alerts", "--buffer-path", f"{buffer_dir}/buffer.db",
            "--buffer-max-bytes", str(20 << 30), "--bridge-url", f"http://127.0.0.1:{free_port()}",
            "--buffer-durability", durability]


def single_pair(work, single, connections):
    """The bare ceiling and the durable agent at one connection count, alternating for ROUNDS
    rounds (so a slow spell of this shared machine falls on both, not on one), each agent on a
    fresh buffer; then the agent at half its median rate. Each round also runs the agent with
    `--buffer-durability normal` (no fsync per commit), to show what the fsync costs here."""
    r = {"connections": connections, "rounds": []}
    for round_ in range(ROUNDS):
        port = free_port()
        bare = start([f"{TARGET}/examples/bare_ingest", f"127.0.0.1:{port}"], port)
        row = {"bare": oha(f"http://127.0.0.1:{port}/ingest", single, "application/json", connections=connections)}
        stop(bare)
        r["rounds"].append(row)
        for kind, durability in (("agent", "full"), ("normal", "normal")):
            buffer_dir = f"{work}/{kind}-{connections}-{round_}"
            os.makedirs(buffer_dir)
            port = free_port()
            agent = start(agent_command(port, buffer_dir, durability), port)
            url = f"http://127.0.0.1:{port}/ingest"
            row[kind] = oha(url, single, "application/json", connections=connections)
            row[kind]["per_commit"] = readings_per_commit(port, row[kind]["codes"].get("202", 0))
            row[f"{kind}_ratio"] = row[kind]["rps"] / row["bare"]["rps"]
            if kind == "agent" and round_ == ROUNDS - 1:
                r["half_rate"] = int(statistics.median(x["agent"]["rps"] for x in r["rounds"]) / 2)
                r["half"] = oha(url, single, "application/json", rate=r["half_rate"], connections=connections)
            stop(agent)
        print(f"{connections} connections, round {round_ + 1}: bare axum parse+202 {row['bare']['rps']:,.0f} req/s, "
              f"agent durable /ingest {row['agent']['rps']:,.0f} req/s ({row['agent_ratio']:.2f} x, "
              f"{row['agent']['per_commit']:.1f} readings per commit), "
              f"with durability normal {row['normal']['rps']:,.0f} req/s ({row['normal_ratio']:.2f} x)", file=sys.stderr)
    return r


def main():
    work = tempfile.mkdtemp(prefix="emberline-bench-")
    single = f"{work}/single.json"
    with open(single, "w") as f:
        json.dump(reading(1), f)
    batch = f"{work}/batch.ndjson"
    with open(batch, "w") as f:
        f.writelines(json.dumps(reading(i)) + "\n" for i in range(1000))
    results = {}
    try:
        results["single"] = [single_pair(work, single, c) for c in CONNECTIONS]

        port = free_port()
        os.makedirs(f"{work}/batch")
        agent = start(agent_command(port, f"{work}/batch"), port)
        time.sleep(1)
        results["idle_rss_kib"] = rss_kib(agent.pid)
        results["batch"] = oha(f"http://127.0.0.1:{port}/v1/readings", batch, "application/x-ndjson")
        print("agent batches of 1000:", results["batch"]["rps"] * 1000, "readings/s", file=sys.stderr)
        stop(agent)

        # Memory at a steady 5,000 readings/s (single-reading requests), fresh buffer.
        shutil.rmtree(f"{work}/mem", ignore_errors=True)
        os.makedirs(f"{work}/mem")
        port = free_port()
        agent = start(agent_command(port, f"{work}/mem"), port)
        load = subprocess.Popen(["oha", "-z", "10s", "-q", "5000", "-c", "20", "-m", "POST", "-H",
                                 "content-type: application/json", "-D", single, "--no-tui",
                                 "--output-format", "json", f"http://127.0.0.1:{port}/ingest"],
                                stdout=subprocess.PIPE, text=True)
        samples = []
        for _ in range(18):
            time.sleep(0.5)
            samples.append(rss_kib(agent.pid))
        load.communicate()
        results["load_rss_kib"] = max(samples)
        results["load_hwm_kib"] = rss_kib(agent.pid, "VmHWM")
        stop(agent)
        results["binary_bytes"] = os.path.getsize(f"{TARGET}/emberline-agent")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results)


def single_rows(p):
    c, rounds = p["connections"], p["rounds"]

    def figures(kind):
        return " · ".join(f"{x[kind]['rps']:,.0f} req/s (p50 {x[kind]['p50_ms']:.2f}, p99 {x[kind]['p99_ms']:.2f} ms)" for x in rounds)

    def ratios(kind):
        each = " / ".join(f"{x[f'{kind}_ratio']:.2f}" for x in rounds)
        groups = " / ".join(f"{x[kind]['per_commit']:.1f}" for x in rounds)
        return (f"ratios {each}, **median {statistics.median(x[f'{kind}_ratio'] for x in rounds):.2f} × ceiling**; "
                f"readings per commit {groups}")

    return [
        f"| {c} connections: bare axum handler, parse + 202 (HTTP ceiling), {len(rounds)} rounds | {figures('bare')} | — |",
        f"| {c} connections: agent `POST /ingest`, durable 202 (fsync per group commit), each round right after the bare one | {figures('agent')} — {ratios('agent')} | ≥ 0.5 × ceiling |",
        f"| {c} connections: the same with `--buffer-durability normal` (fsync at checkpoints only), for comparison | {figures('normal')} — {ratios('normal')} | — |",
        f"| {c} connections: agent `POST /ingest` at half its median rate ({p['half_rate']:,} req/s) | p50 {p['half']['p50_ms']:.2f} ms, **p99 {p['half']['p99_ms']:.2f} ms** | p99 ≤ 10 ms |",
    ]


def report(r):
    batch_rps = r["batch"]["rps"] * 1000
    codes = {f"{k} ({p['connections']}, round {i + 1})": x[k]["codes"]
             for p in r["single"] for i, x in enumerate(p["rounds"]) for k in ("bare", "agent", "normal")}
    codes.update({f"half ({p['connections']})": p["half"]["codes"] for p in r["single"]})
    codes["batch"] = r["batch"]["codes"]
    lines = [
        "## Agent ingest (issue 3)",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}: {os.cpu_count()} cores, "
        f"{platform.platform()}; load generator oha on the same machine, {DURATION} s per run, loopback; "
        f"bare and agent alternate {ROUNDS} times per connection count; "
        f"batches with {CONNECTIONS[0]} connections. Command: `./scripts/bench-ingest`.",
        "",
        "| measure | figure | goal |",
        "|---|---|---|",
        *[row for p in r["single"] for row in single_rows(p)],
        f"| agent `POST /v1/readings`, NDJSON batches of 1,000 | {r['batch']['rps']:,.1f} req/s = **{batch_rps:,.0f} readings/s**, p99 {r['batch']['p99_ms']:.1f} ms | ≥ 200,000 readings/s |",
        f"| agent resident memory, idle | {r['idle_rss_kib'] / 1024:.1f} MiB | ≤ 15 MiB |",
        f"| agent resident memory at 5,000 readings/s | {r['load_rss_kib'] / 1024:.1f} MiB (peak {r['load_hwm_kib'] / 1024:.1f} MiB) | ≤ 15 MiB |",
        f"| agent binary, release, stripped | {r['binary_bytes'] / 1e6:.2f} MB | ≤ 10 MB |",
        "",
        "Status codes: " + ", ".join(f"{k}: {json.dumps(v)}" for k, v in codes.items()),
        "",
    ]
    record("Agent ingest (issue 3)", "\n".join(lines))

if __name__ == "__main__":
    main()
