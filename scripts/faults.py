#!/usr/bin/env python3
"""End-to-end fault suite (issue 8): the whole pipeline from release binaries on this machine,
under steady HTTP and MQTT QoS1 load, one fault at a time; after each, every reading a device got
a "yes" for (202 / PUBACK) must be in PostgreSQL exactly once. Run through scripts/faults
(`--short` for the test command). Design §2-3 are the promises under test."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from faults_lib import (  # noqa: E402
    HttpDevice, MqttDevice, Namespace, Proc, Psql, Tmpfs, can_use_netns, free_port, http_get, wait_until,
)

TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/emberline/target"))
TARGET = TARGET_DIR + "/release"  # --debug: the debug build scripts/test has just made
SERVER_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_RESTART = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart"

# Seconds (or counts) per version: the short one for the test command, the full one for the report.
TIMES = {
    "short": dict(warm=2, post=2, kills=3, kill_every=2, bridge_down=10, broker_down=3, pg_kills=3, pg_every=2,
                  pg_restart=False, disk_wait=30, disk_hold=3, partition=10, writer_stop=8, drain=90, rate=25,
                  bound=420),
    "full": dict(warm=5, post=10, kills=10, kill_every=5, bridge_down=120, broker_down=30, pg_kills=5, pg_every=5,
                 pg_restart=True, disk_wait=90, disk_hold=10, partition=60, writer_stop=60, drain=600, rate=25,
                 bound=2400),
}


class Suite:
    def __init__(self, args):
        self.args = args
        self.t = TIMES["short" if args.short else "full"]
        self.work = tempfile.mkdtemp(prefix="emberline-faults-")
        self.logs = f"{self.work}/logs"
        os.makedirs(self.logs)
        self.procs = []
        self.db_name = f"emberline_faults_{os.getpid()}"
        self.db_made = False
        self.namespace = None
        self.tmpfs = None
        self.results = []
        self.bridge_carry = 0.0
        self.stop_devices = threading.Event()

    # ---- the stack ------------------------------------------------------------------------
    def proc(self, name, argv, health=None, wait=30):
        proc = Proc(name, argv, self.logs, health)
        self.procs.append(proc)
        return proc.start(wait)

    def start_broker(self):
        before = open(self.stack.log_path).read().count("stack is up") if os.path.exists(self.stack.log_path) else 0
        self.stack.start()
        wait_until("the broker (emberline-stack up)",
                   lambda: self.stack.popen.poll() is None and open(self.stack.log_path).read().count("stack is up")
                   > before, 90)

    def setup(self):
        self.kafka = f"127.0.0.1:{free_port()}"
        self.stack = Proc("stack", [f"{TARGET}/emberline-stack", "up", "--data-dir", f"{self.work}/stack",
                                    "--kafka-port", self.kafka.split(":")[1], "--database-url", SERVER_URL], self.logs)
        self.procs.append(self.stack)
        self.start_broker()
        Psql(SERVER_URL).run(f"CREATE DATABASE {self.db_name}")
        self.db_made = True
        self.db_url = SERVER_URL.rsplit("/", 1)[0] + "/" + self.db_name
        self.psql = Psql(self.db_url)
        subprocess.run([f"{TARGET}/emberline-hub", "migrate", "--database-url", self.db_url], check=True,
                       capture_output=True, timeout=60)
        self.netns_reason = can_use_netns()
        # The partitioned agent reaches the bridge over a veth pair, so then it listens beyond loopback.
        bridge_host = "0.0.0.0" if self.netns_reason is None else "127.0.0.1"
        self.bridge_port = free_port()
        self.bridge = self.proc("bridge", [f"{TARGET}/emberline-bridge", "--listen", f"{bridge_host}:{self.bridge_port}",
                                           "--brokers", self.kafka],
                                f"http://127.0.0.1:{self.bridge_port}/healthz")
        self.writer_port = free_port()
        self.writer = self.proc("writer", [f"{TARGET}/emberline-hub", "write", "--brokers", self.kafka,
                                           "--listen", f"127.0.0.1:{self.writer_port}", "--database-url", self.db_url],
                                f"http://127.0.0.1:{self.writer_port}/healthz")
        detect_port = free_port()
        self.proc("detector", [f"{TARGET}/emberline-hub", "detect", "--brokers", self.kafka,
                               "--listen", f"127.0.0.1:{detect_port}"], f"http://127.0.0.1:{detect_port}/healthz")
        self.agent_a = self.agent("agent-a", f"{self.work}/agent-a/buffer.db")

    def agent(self, name, buffer, host="127.0.0.1", prefix=(), bridge_ip="127.0.0.1"):
        os.makedirs(os.path.dirname(buffer), exist_ok=True)
        http_port, mqtt_port = free_port(), free_port()
        proc = self.proc(name, [*prefix, f"{TARGET}/emberline-agent", "run", "--agent-id", name,
                                "--http-listen", f"{host}:{http_port}", "--mqtt-listen", f"{host}:{mqtt_port}",
                                "--no-alerts", "--buffer-path", buffer,
                                "--bridge-url", f"http://{bridge_ip}:{self.bridge_port}", "--heartbeat-secs", "5"],
                         f"http://{host}:{http_port}/healthz")
        proc.host, proc.http_port, proc.mqtt_port = host, http_port, mqtt_port
        return proc

    def depth(self, agent):
        import json
        status, body = http_get(f"http://{agent.host}:{agent.http_port}/readyz")
        try:
            return json.loads(body)["buffer_readings"]
        except (TypeError, ValueError, KeyError):
            return None

    @staticmethod
    def metric(port, prefix, label=""):
        status, body = http_get(f"http://127.0.0.1:{port}/metrics")
        for line in (body or b"").decode().splitlines():
            if line.startswith(prefix) and label in line:
                return float(line.split()[-1])
        return 0.0

    def writer_raw_records(self):
        return self.metric(self.writer_port, "emberline_hub_records_total{", 'topic="raw-data"')

    def bridge_records(self):
        """Records Kafka acknowledged to the bridge, across its restarts."""
        return self.bridge_carry + self.metric(self.bridge_port, "emberline_bridge_records_total")

    def settle(self):
        """After a drain: waits (bounded) until the writer has read everything the bridge produced."""
        deadline, last = time.time() + 15, None
        while time.time() < deadline:
            now = (self.writer_raw_records(), self.bridge_records())
            if now == last:
                return
            last = now
            time.sleep(1.5)

    # ---- one scenario ---------------------------------------------------------------------
    def scenario(self, key, title, fault, agent=None, skip=None):
        agent = agent or self.agent_a
        print(f"\n== {key}: {title}", flush=True)
        if self.args.only and key not in self.args.only:
            skip = "not selected (--only)"
        if skip:
            print(f"   skipped: {skip}", flush=True)
            self.results.append(dict(key=key, title=title, skipped=skip))
            return
        stop = threading.Event()
        rate = self.t["rate"]
        devices = [HttpDevice(f"{key}-http-{i}", agent.host, agent.http_port, rate, stop) for i in range(2)]
        devices += [MqttDevice(f"{key}-mqtt-{i}", agent.host, agent.mqtt_port, rate, stop) for i in range(2)]
        raw_before = (self.writer_raw_records(), self.bridge_records())
        started = time.time()
        for device in devices:
            device.start()
        time.sleep(self.t["warm"])
        fault_at = time.time()
        notes = fault(devices) or []
        healed = time.time()
        time.sleep(self.t["post"])
        stop.set()
        for device in devices:
            device.join(15)
        load_end = time.time()
        acked = {}
        for device in devices:
            acked.update(device.acked)
        drained, rows = self.drain(key, acked, agent)
        self.settle()
        result = self.figures(key, title, devices, acked, rows, raw_before, started, fault_at, healed, load_end,
                              drained, notes)
        self.results.append(result)
        self.print_result(result)

    def stored(self, key):
        lines = self.psql.run(f"SELECT reading_id, source_name, payload->>'seq', extract(epoch FROM written_at) "
                              f"FROM readings WHERE source_name LIKE '{key}-%'")
        return [line.split("|") for line in lines]

    def drain(self, key, acked, agent):
        """Waits (bounded) until every acknowledged reading is stored and the agent's buffer is empty."""
        deadline = time.time() + self.t["drain"]
        while True:
            rows = self.stored(key)
            ids = {row[0] for row in rows}
            if all(i in ids for i in acked) and self.depth(agent) == 0:
                time.sleep(1)  # let stragglers (stored, never acknowledged) land before counting
                return True, self.stored(key)
            if time.time() > deadline:
                return False, rows
            time.sleep(0.5)

    def figures(self, key, title, devices, acked, rows, raw_before, started, fault_at, healed, load_end, drained,
                notes):
        ids = [row[0] for row in rows]
        per_seq = {}
        for row in rows:
            per_seq.setdefault((row[1], row[2]), []).append(row[0])
        written = {row[0]: float(row[3]) for row in rows}
        lost = sorted(i for i in acked if i not in written)
        acked_before_heal = [written[i] for i, at in acked.items() if at <= healed and i in written]
        recover = max(0.0, max(acked_before_heal, default=healed) - healed)
        after = sorted(at for at in acked.values() if at > healed)
        first_yes = after[0] - healed if after else None
        times = sorted(acked.values())
        gap = max((b - a for a, b in zip([started] + times, times + [load_end])), default=0.0)
        refusals = {}
        for device in devices:
            for answer, count in device.refusals.items():
                refusals[answer] = refusals.get(answer, 0) + count
            if device.error:
                notes.append(f"device {device.source} failed: {device.error}")
            if device.mismatch:
                notes.append(f"{device.source}: agent's reading_id differs from the derived one, e.g. "
                             f"{device.mismatch[0]}")
        return dict(
            key=key, title=title, sent=sum(d.sent for d in devices), attempts=sum(d.attempts for d in devices),
            acked=len(acked), stored=len(ids), unacked_stored=len(set(ids) - set(acked)), lost=lost,
            dup_rows=len(ids) - len(set(ids)), dup_seq=[v for v in per_seq.values() if len(v) > 1],
            raw_records=int(self.writer_raw_records() - raw_before[0]),
            produced=int(self.bridge_records() - raw_before[1]), recover=recover, first_yes=first_yes,
            gap=gap, fault_seconds=healed - fault_at, refusals=refusals, drained=drained, notes=notes,
        )

    @staticmethod
    def print_result(r):
        print(f"   sent {r['sent']}, acknowledged {r['acked']}, stored {r['stored']} "
              f"({r['unacked_stored']} stored without a yes), lost {len(r['lost'])}, duplicated rows "
              f"{r['dup_rows'] + len(r['dup_seq'])}, raw-data records read by the writer {r['raw_records']} "
              f"({r['raw_records'] - r['stored']:+d} vs rows), produced by the bridge {r['produced']} "
              f"({r['produced'] - r['stored']:+d}); drained {'yes' if r['drained'] else 'NO'}; "
              f"recovered {r['recover']:.1f} s after the fault ended; first yes after it {fmt(r['first_yes'])}; "
              f"longest gap without a yes {r['gap']:.1f} s",
              flush=True)
        if r["refusals"]:
            print(f"   refusals seen by devices: {r['refusals']}", flush=True)
        for note in r["notes"]:
            print(f"   note: {note}", flush=True)
        if r["lost"]:
            print(f"   LOST (first 10): {r['lost'][:10]}", flush=True)
        if r["dup_seq"]:
            print(f"   DUPLICATED (first 5): {r['dup_seq'][:5]}", flush=True)

    # ---- the faults -------------------------------------------------------------------------
    def kill_agent(self, devices):
        for _ in range(self.t["kills"]):
            time.sleep(self.t["kill_every"])
            self.agent_a.kill9()
            time.sleep(0.3)
            self.agent_a.start()
        return [f"agent kill -9'd {self.t['kills']} times, {self.t['kill_every']} s apart, restarted on its buffer"]

    def bridge_down(self, devices):
        self.bridge_carry += self.metric(self.bridge_port, "emberline_bridge_records_total")
        self.bridge.kill9()
        time.sleep(self.t["bridge_down"])
        self.bridge.start()
        return [f"bridge kill -9'd, down {self.t['bridge_down']} s"]

    def broker_down(self, devices):
        tansu = self.stack.children()
        for pid in tansu:
            os.kill(pid, signal.SIGKILL)
        self.stack.kill9()
        time.sleep(self.t["broker_down"])
        self.start_broker()
        return [f"tansu kill -9'd, down {self.t['broker_down']} s, restarted on its data"]

    def postgres(self, devices):
        terminated = 0
        for _ in range(self.t["pg_kills"]):
            time.sleep(self.t["pg_every"])
            terminated += int(Psql(SERVER_URL).run(
                f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                f"WHERE datname = '{self.db_name}' AND pid <> pg_backend_pid()")[0])
        notes = [f"pg_terminate_backend {self.t['pg_kills']} times ({terminated} connections)"]
        if self.t["pg_restart"]:
            time.sleep(self.t["pg_every"])
            began = time.time()
            subprocess.run(PG_RESTART, shell=True, check=True, capture_output=True, timeout=120)
            wait_until("PostgreSQL back", lambda: self._pg_up(), 60)
            notes.append(f"PostgreSQL server restarted ({time.time() - began:.1f} s)")
        return notes

    @staticmethod
    def _pg_up():
        try:
            Psql(SERVER_URL).run("SELECT 1")
            return True
        except RuntimeError:
            return False

    def writer_slow(self, devices):
        self.writer.signal(signal.SIGSTOP)
        time.sleep(self.t["writer_stop"])
        self.writer.signal(signal.SIGCONT)
        return [f"writer SIGSTOPped {self.t['writer_stop']} s, then SIGCONT"]

    def disk_full(self, agent_d):
        def fault(devices):
            ballast = f"{self.tmpfs.path}/ballast"
            free = self.tmpfs.free()
            headroom = 1 << 20
            with open(ballast, "wb") as f:
                f.write(b"\0" * max(0, free - headroom))
            self.bridge.signal(signal.SIGSTOP)  # the buffer grows instead of draining
            began = time.time()
            try:
                refused_at = None
                while time.time() - began < self.t["disk_wait"]:
                    refused = sum(sum(d.refusals.values()) for d in devices)
                    if refused and refused_at is None:
                        refused_at = time.time()
                    if refused_at and time.time() - refused_at >= self.t["disk_hold"]:
                        break
                    if agent_d.popen.poll() is not None:
                        break
                    time.sleep(0.2)
            finally:
                os.unlink(ballast)
                self.bridge.signal(signal.SIGCONT)
            notes = [f"tmpfs of {self.tmpfs.size}, ballast left {headroom >> 10} KiB free; bridge paused meanwhile"]
            if refused_at is None:
                notes.append(f"the agent never refused within {self.t['disk_wait']} s")
            else:
                notes.append(f"first refusal {refused_at - began:.1f} s after the disk filled")
            # Design §3: a full buffer (the disk included) answers 503 with Retry-After.
            wrong = {answer: n for d in devices for answer, n in d.refusals.items() if "HTTP 5" in str(answer)
                     and "503" not in str(answer)}
            if wrong:
                notes.append(f"contract failed: a full disk answered {wrong}, not 503")
            if agent_d.popen.poll() is not None:
                notes.append(f"agent-d EXITED ({agent_d.popen.returncode}) on a full disk; restarted")
                agent_d.start()
            return notes
        return fault

    def partition(self, devices):
        self.namespace.partition(True)
        time.sleep(self.t["partition"])
        self.namespace.partition(False)
        return [f"veth link agent→bridge down {self.t['partition']} s (agent in its own netns)"]

    # ---- the run ------------------------------------------------------------------------------
    def run(self):
        self.setup()
        self.scenario("s1", "agent kill -9 under load, repeatedly", self.kill_agent)
        self.scenario("s2", "bridge down, then back", self.bridge_down)
        self.scenario("s3", "broker killed and restarted", self.broker_down)
        title = "PostgreSQL connections killed" + (" and the server restarted" if self.t["pg_restart"] else "")
        self.scenario("s4", title, self.postgres)
        self.run_disk()
        self.run_partition()
        self.scenario("s7", "slow consumer: writer stopped, lag builds, catches up", self.writer_slow)

    def run_disk(self):
        title = "agent's disk nearly full (buffer on its own small tmpfs)"
        if self.args.only and "s5" not in self.args.only:
            return self.scenario("s5", title, None)
        if os.geteuid() != 0:
            return self.scenario("s5", title, None, skip="needs root to mount a tmpfs")
        self.tmpfs = Tmpfs(f"{self.work}/disk", "16m")
        reason = self.tmpfs.mount()
        if reason:
            self.tmpfs = None
            return self.scenario("s5", title, None, skip=reason)
        agent_d = self.agent("agent-d", f"{self.tmpfs.path}/buffer/buffer.db")
        self.scenario("s5", title, self.disk_full(agent_d), agent=agent_d)
        agent_d.stop()

    def run_partition(self):
        title = "network partition agent ↔ bridge (netns + veth)"
        if self.args.only and "s6" not in self.args.only:
            return self.scenario("s6", title, None)
        if self.netns_reason:
            return self.scenario("s6", title, None, skip=self.netns_reason)
        self.namespace = Namespace(os.getpid() % 10000)
        self.namespace.create()
        agent_p = self.agent("agent-p", f"{self.work}/agent-p/buffer.db", host=self.namespace.agent_ip,
                             prefix=self.namespace.exec_prefix(), bridge_ip=self.namespace.bridge_side_ip)
        self.scenario("s6", title, self.partition, agent=agent_p)
        agent_p.stop()

    def cleanup(self):
        self.stop_devices.set()
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except Exception as error:  # noqa: BLE001 — keep cleaning
                print(f"cleanup: {proc.name}: {error}", file=sys.stderr)
        if self.namespace:
            self.namespace.remove()
        if self.tmpfs:
            self.tmpfs.unmount()
        if self.db_made:
            try:
                Psql(SERVER_URL).run(f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)")
            except Exception as error:  # noqa: BLE001
                print(f"cleanup: cannot drop {self.db_name}: {error}", file=sys.stderr)
        if self.args.keep:
            print(f"kept {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def failed(self):
        bad = []
        for r in self.results:
            if r.get("skipped"):
                continue
            if r["lost"] or r["dup_rows"] or r["dup_seq"] or not r["drained"]:
                bad.append(r["key"])
            elif any("failed" in n or "EXITED" in n or "differs" in n for n in r["notes"]):
                bad.append(r["key"])
        return bad


FINDINGS = "## Findings"


def fmt(seconds):
    return "—" if seconds is None else f"{seconds:.1f} s"


def report(suite, path, elapsed):
    t = suite.t
    lines = [
        "# Reliability under faults (issue 8)",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `./scripts/faults` (the full version, "
        f"{elapsed / 60:.1f} min), {os.cpu_count()} cores shared with other work. The suite starts its own stack "
        "from release binaries: Tansu 0.6.0 with SQLite storage (`emberline-stack up`), a fresh PostgreSQL "
        "database (`emberline-hub migrate`), the bridge, `emberline-hub write` and `detect`, and agents on "
        "ephemeral ports. Four devices per scenario (two HTTP `/ingest`, two MQTT QoS 1 to the agent's ingest "
        f"listener), {t['rate']} readings/s each, every reading carrying the device's own `seq`, so its "
        "`reading_id` is known in advance; a device resends the same reading until it hears a yes (202 / "
        "PUBACK), as a real one would. After each fault the suite waits for the pipeline to drain, then looks "
        "in PostgreSQL.",
        "",
        "Columns: *sent* distinct readings the devices tried; *acked* the ones that got a yes; *stored* rows in "
        "`readings` for that scenario's devices (more than acked when a reading was committed but its yes was "
        "lost to the fault); *lost* acked but not stored; *dup* rows with the same reading_id or the same "
        "(source, seq) twice; *produced* records Kafka acknowledged to the bridge during the scenario (more than "
        "rows = an agent sent a batch again: at-least-once duplicates in Kafka); *raw-data read* records of "
        "`raw-data` the writer consumed (more than produced = the writer read some again); both kinds die at "
        "PostgreSQL (`ON CONFLICT DO NOTHING`); *recover* "
        "seconds from the end of the fault until every reading acked before it was stored; *first yes* seconds "
        "from the end of the fault to the first yes after it; *gap* the longest time in which no device got a "
        "yes (how long ingest itself was down).",
        "",
        "| scenario | sent | acked | stored | lost | dup | produced (vs rows) | raw-data read (vs rows) | recover | first yes | gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for r in suite.results:
        if r.get("skipped"):
            lines.append(f"| {r['key']} {r['title']} | skipped: {r['skipped']} | | | | | | | | | |")
            continue
        dup = r["dup_rows"] + len(r["dup_seq"])
        lines.append(f"| {r['key']} {r['title']} | {r['sent']} | {r['acked']} | {r['stored']} | "
                     f"**{len(r['lost'])}** | **{dup}** | {r['produced']} ({r['produced'] - r['stored']:+d}) | {r['raw_records']} ({r['raw_records'] - r['stored']:+d}) | "
                     f"{r['recover']:.1f} s{'' if r['drained'] else ' (NOT drained)'} | {fmt(r['first_yes'])} | "
                     f"{r['gap']:.1f} s |")
        refusals = ", ".join(f"{k} ×{v}" for k, v in sorted(r["refusals"].items()))
        notes.append(f"- **{r['key']}**: " + "; ".join(r["notes"] + ([f"answers other than yes: {refusals}"]
                                                                    if refusals else [])) + ".")
        if r["lost"]:
            notes.append(f"  - LOST reading_ids (first 20 of {len(r['lost'])}): {', '.join(r['lost'][:20])}")
        if r["dup_seq"]:
            notes.append(f"  - DUPLICATED (first 5): {r['dup_seq'][:5]}")
    bad = suite.failed()
    lines += ["", "What each fault did, and what devices were told:", "", *notes, "",
              f"**Verdict:** {'every acknowledged reading stored exactly once' if not bad else 'FAILED in ' + ', '.join(bad)}.",
              "",
              "Timings of the full version: " + ", ".join(f"{k}={v}" for k, v in t.items()) + " (seconds or counts; "
              "`scripts/faults.py`, `TIMES`). The short version (`./scripts/faults --short`) runs the same "
              "scenarios with shorter faults and no PostgreSQL server restart.", ""]
    # The hand-written analysis below the figures survives a new run.
    existing = open(path).read() if os.path.exists(path) else ""
    kept = existing[existing.find(FINDINGS):] if FINDINGS in existing else ""
    with open(path, "w") as f:
        f.write("\n".join(lines) + ("\n" + kept if kept else ""))
    print(f"\nreport written to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="a minute or two: shorter faults, no PostgreSQL restart")
    parser.add_argument("--report", help="write the markdown report here (the full version: docs/reliability.md)")
    parser.add_argument("--debug", action="store_true", help="use the debug binaries (what scripts/test builds)")
    parser.add_argument("--only", type=lambda text: text.split(","), help="run only these scenarios, e.g. s2,s6")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args()
    if args.report is None and not args.short:
        args.report = "docs/reliability.md"
    if args.debug:
        global TARGET
        TARGET = TARGET_DIR + "/debug"

    suite = Suite(args)

    def interrupted(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, interrupted)
    signal.alarm(suite.t["bound"])  # the whole suite is bounded, cleanup included after this fires
    began = time.time()
    try:
        suite.run()
    finally:
        signal.alarm(0)
        suite.stop_devices.set()
        suite.cleanup()
    elapsed = time.time() - began
    if args.report:
        report(suite, args.report, elapsed)
    bad = suite.failed()
    print(f"\nfault suite: {len(suite.results)} scenarios in {elapsed:.0f} s; "
          f"{'all acknowledged readings stored exactly once' if not bad else 'FAILED: ' + ', '.join(bad)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
