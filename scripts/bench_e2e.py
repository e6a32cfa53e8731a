"""End-to-end benchmark (issue 6): sensor -> visible in the dashboard API, on the local pipeline.

Starts `emberline-stack demo --no-simulator` (Tansu, bridge, hub detect + write, dashboard, two
agents; release binaries), then drives the agents with `emberline-sim fire` over HTTP batches:
  1. a sustained rate (default 2,000 readings/s: 1,000 sensors at 2 Hz) for a minute, measuring
     per reading the time from its send (its `timestamp`, stamped when the simulator sends it) to
     the moment `/api/sensors` shows it (the sensor's newest `observed_at`);
  2. steps up the rate until the pipeline falls behind (staleness, i.e. readings sent but not
     yet visible, grows during the step, or the simulator cannot send the rate);
  3. the broker's own produce/consume ceiling on the same broker (stack example broker_ceiling).
Measurement overhead stays small: every step names its sensors afresh (`step{k}-{n}`) and the
poller asks only for about a hundred of them (`/api/sensors?source=step{k}-1...`) every 100 ms;
each sample is an upper bound within one poll period.
"""
import calendar
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone

sys.path.insert(0, "scripts")
from benchlib import free_port, record  # noqa: E402

BIN = os.environ.get("BENCH_E2E_BIN") or os.path.join(os.environ["CARGO_TARGET_DIR"], "release")
POLL = 0.1
SUSTAINED = int(os.environ.get("BENCH_E2E_RATE", "2000"))
SUSTAINED_SECS = int(os.environ.get("BENCH_E2E_SECS", "60"))
STEPS = [int(r) for r in os.environ.get("BENCH_E2E_STEPS", "3000,4000,6000,8000,11000,15000,20000").split(",")]
STEP_SECS = int(os.environ.get("BENCH_E2E_STEP_SECS", "25"))


def parse_time(text):
    """RFC 3339 (UTC) -> seconds since the epoch, microsecond precision."""
    text = text.replace("+00:00", "").rstrip("Z")
    base, _, frac = text.partition(".")
    whole = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + frac[:6]) if frac else 0.0)


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def free_pair():
    """A port p with p + 1 free too (the demo's agent n takes base + n)."""
    for _ in range(50):
        p = free_port()
        try:
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise SystemExit("no two consecutive free ports")


class Pipeline:
    def __init__(self, data_dir):
        self.ports = {k: free_port() for k in ["kafka", "bridge", "detect", "write", "dashboard"]}
        self.agent_http, self.agent_mqtt, self.agent_alerts = free_pair(), free_pair(), free_pair()
        args = [f"{BIN}/emberline-stack", "demo", "--data-dir", data_dir, "--fresh", "--no-simulator",
                "--bin-dir", BIN, "--database-name", "emberline_e2e", "--agents", "2",
                "--kafka-port", str(self.ports["kafka"]), "--bridge-port", str(self.ports["bridge"]),
                "--detect-port", str(self.ports["detect"]), "--write-port", str(self.ports["write"]),
                "--dashboard-port", str(self.ports["dashboard"]),
                "--agent-http-port", str(self.agent_http), "--agent-mqtt-port", str(self.agent_mqtt),
                "--agent-alerts-port", str(self.agent_alerts)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 180
        for line in self.proc.stdout:
            print("  demo:", line.rstrip(), flush=True)
            if "Emberline is running." in line:
                break
            if time.time() > deadline:
                raise SystemExit("the pipeline did not come up")
        else:
            raise SystemExit("the demo exited before it was running")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()
        self.dashboard = f"http://127.0.0.1:{self.ports['dashboard']}"
        self.agents = [f"http://127.0.0.1:{self.agent_http + n}" for n in range(2)]
        self.bootstrap = f"127.0.0.1:{self.ports['kafka']}"

    def stop(self):
        self.proc.send_signal(2)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def watched_prefix(prefix, sensors):
    """A name prefix shared by ~50-250 of the sensors `{prefix}-0 .. {prefix}-{sensors-1}`."""
    digits = "1"
    while True:
        count = sum(1 for n in range(sensors) if str(n).startswith(digits))
        if count <= 250:
            return f"{prefix}-{digits}", count
        digits += "2"


class Poller(threading.Thread):
    """Polls /api/sensors for the watched sensors; records (when seen, latency) per new reading."""

    def __init__(self, dashboard, source):
        super().__init__(daemon=True)
        self.url = f"{dashboard}/api/sensors?source={source}"
        self.latest = {}
        self.samples = []  # (seen_at, visible latency)
        self.classified = []
        self.staleness = []  # (at, oldest newest-reading age over the watched sensors)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            started = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    features = json.load(answer)["features"]
            except OSError as error:
                print("  poll failed:", error, flush=True)
                features = []
            now = time.time()
            self.take(features, now)
            self.halt.wait(max(0.0, POLL - (time.time() - started)))

    def take(self, features, now):
        for feature in features:
            p = feature["properties"]
            name, observed = p["source_name"], p["observed_at"]
            before = self.latest.get(name)
            if before is None or before[0] != observed:
                self.samples.append((now, now - parse_time(observed)))
            if p.get("classified_at") and (before is None or before[1] != p["classified_at"]):
                self.classified.append(now - parse_time(p["classified_at"]))
            self.latest[name] = (observed, p.get("classified_at"))
        if self.latest:
            oldest = min(parse_time(o) for o, _ in self.latest.values())
            self.staleness.append((now, now - oldest))


def step(pipeline, k, rate, seconds):
    sensors = max(100, rate // 2)
    prefix = f"step{k}"
    source, watched = watched_prefix(prefix, sensors)
    poller = Poller(pipeline.dashboard, source)
    poller.start()
    sim = [f"{BIN}/emberline-sim", "fire", "--sensors", str(sensors), "--rate", str(rate),
           "--duration", f"{seconds}s", "--prefix", prefix, "--json", "--report-every", "5s",
           "--concurrency", "32"]
    for agent in pipeline.agents:
        sim += ["--agent", agent]
    began = time.time()
    out = subprocess.run(sim, stdout=subprocess.PIPE, text=True, check=True).stdout
    ended = time.time()
    summary = json.loads(out.strip().splitlines()[-1])
    time.sleep(5)  # the last readings sent become visible (or show that they do not)
    poller.halt.set()
    poller.join()
    warm = began + min(5, seconds / 4)
    during = [(t, s) for t, s in poller.staleness if warm <= t <= ended]
    quarter = max(1, len(during) // 4)
    stale_first = pct([s for _, s in during[:quarter]], 0.5)
    stale_last = pct([s for _, s in during[-quarter:]], 0.5)
    latencies = [lat for t, lat in poller.samples if t >= warm]
    interval = sensors / rate
    expected = watched * (ended - warm) / interval
    result = {
        "rate": rate, "sensors": sensors, "watched": watched, "secs": seconds,
        "sent_per_sec": summary["sent_per_sec"], "failed": summary["failed"],
        "agent_p99_ms": summary["latency_p99_ms"],
        "samples": len(latencies), "coverage": len(latencies) / max(1.0, expected),
        "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99), "max": max(latencies, default=float("nan")),
        "classified_p50": pct(poller.classified, 0.5), "classified_p99": pct(poller.classified, 0.99),
        "stale_first": stale_first, "stale_last": stale_last,
    }
    result["sustained"] = (summary["sent_per_sec"] >= 0.95 * rate and summary["failed"] == 0
                           and stale_last <= stale_first + 1.0 and result["p99"] <= 5.0)
    print(f"  {rate}/s: sent {summary['sent_per_sec']:.0f}/s, failed {summary['failed']}, visible p50 "
          f"{result['p50']*1000:.0f} ms p99 {result['p99']*1000:.0f} ms ({len(latencies)} samples, coverage "
          f"{result['coverage']:.2f}), staleness {stale_first:.2f} -> {stale_last:.2f} s, "
          f"{'sustained' if result['sustained'] else 'FALLING BEHIND'}", flush=True)
    return result


def broker_ceiling(pipeline):
    out = subprocess.run([f"{BIN}/examples/broker_ceiling", pipeline.bootstrap, "100000"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def row(r):
    verdict = "yes" if r["sustained"] else "**no**"
    return (f"| {r['rate']:,} | {r['sensors']:,} | {r['sent_per_sec']:,.0f} | {r['p50']*1000:,.0f} ms | "
            f"{r['p99']*1000:,.0f} ms | {r['classified_p99']*1000:,.0f} ms | {r['stale_first']:.2f} → "
            f"{r['stale_last']:.2f} s | {r['samples']:,} ({r['coverage']:.0%}) | {verdict} |")


def main():
    data_dir = os.path.abspath(os.environ.get("BENCH_E2E_DIR", "/tmp/emberline-bench-e2e"))
    load_before = os.getloadavg()
    pipeline = Pipeline(data_dir)
    results = []
    try:
        print(f"sustained: {SUSTAINED} readings/s for {SUSTAINED_SECS} s", flush=True)
        results.append(step(pipeline, 0, SUSTAINED, SUSTAINED_SECS))
        for k, rate in enumerate(STEPS, start=1):
            time.sleep(5)
            results.append(step(pipeline, k, rate, STEP_SECS))
            if not results[-1]["sustained"]:
                break
        print("broker ceiling (same broker, plain rdkafka)", flush=True)
        ceiling = broker_ceiling(pipeline)
        print(f"  produced {ceiling['produced_per_sec']:.0f}/s, consumed {ceiling['consumed_per_sec']:.0f}/s")
    finally:
        pipeline.stop()
    write(results, ceiling, load_before, os.getloadavg())


def write(results, ceiling, load_before, load_after):
    main_run = results[0]
    sustained = [r["rate"] for r in results[1:] if r["sustained"]]
    highest = max(sustained + ([main_run["rate"]] if main_run["sustained"] else []), default=0)
    first_fail = next((r["rate"] for r in results if not r["sustained"]), None)
    title = "End to end (issue 6)"
    lines = [
        f"## {title}", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.platform()}), {os.cpu_count()} cores, everything on this machine (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; a load well above 2 before means other work "
        "shared the CPU and the figures are lower bounds). Command: `./scripts/bench-e2e` (part of `./scripts/bench`).",
        "",
        "The local pipeline of `emberline-stack demo --no-simulator` (Tansu 0.6.0 with SQLite storage, bridge, "
        "hub detect + write, dashboard, two agents, PostgreSQL; release builds), driven by `emberline-sim fire "
        "--rate R` over HTTP batches (sensors at 2 Hz each, spread over 50 ms ticks). Latency is per reading, "
        "from its `timestamp` (stamped as the simulator sends it) to the poll of `/api/sensors?source=…` that "
        "first shows it as the sensor's newest reading (about a hundred watched sensors, polled every 100 ms: "
        "an upper bound within one poll). *Classified* is the same for the newest classification. Staleness "
        "is the age of the oldest newest-reading among the watched sensors (sent but not visible, plus the 0.5 s "
        "between a sensor's readings), median of the step's first and last quarter: growing staleness is "
        "growing lag.",
        "",
        "| rate (readings/s) | sensors | sent/s | visible p50 | visible p99 | classified p99 | staleness | samples (coverage) | sustained |",
        "|---|---|---|---|---|---|---|---|---|",
        *[row(r) for r in results],
        "",
        f"- **At {main_run['rate']:,} readings/s for {main_run['secs']} s: p50 {main_run['p50']*1000:,.0f} ms, "
        f"p99 {main_run['p99']*1000:,.0f} ms** sensor → visible in the dashboard API (goal p99 ≤ 1 s: "
        f"{'met' if main_run['p99'] <= 1.0 else 'not met'}).",
        f"- Highest rate sustained without growing lag: **{highest:,} readings/s**"
        + (f" (fell behind at {first_fail:,}/s; steps of {STEP_SECS} s)." if first_fail else
           f" (every step up to {results[-1]['rate']:,}/s held; the ceiling is higher)."),
        f"- The broker's own ceiling in the same run (plain rdkafka into the same Tansu, 6 partitions, "
        f"{ceiling['records']:,} reading-sized records, idempotent acks=all lz4; "
        "`stack/examples/broker_ceiling.rs`): "
        f"**{ceiling['produced_per_sec']:,.0f} produced/s, {ceiling['consumed_per_sec']:,.0f} consumed/s**. "
        "Every reading crosses the broker several times (raw-data produced by the bridge, read by the writer "
        "and the detector; anomaly-data produced and read), so the pipeline's ceiling is a fraction of these.",
        "",
    ]
    record(title, "\n".join(lines))


if __name__ == "__main__":
    main()
