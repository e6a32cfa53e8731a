"""Pieces of the fault suite (scripts/faults.py): processes it owns, the devices that drive load,
PostgreSQL through psql, and the network namespace and tmpfs it makes and removes itself."""
import ctypes
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from datetime import datetime, timezone

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when the suite dies, even by kill -9.
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2):
    """(status, body) or (None, None) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return None, None


def wait_until(what, check, seconds, step=0.2):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(step)
    raise RuntimeError(f"{what}: not within {seconds} s")


class Proc:
    """One service process the suite started: its command, log, and how to kill or restart it."""

    def __init__(self, name, argv, log_dir, health=None):
        self.name, self.argv, self.health = name, argv, health
        self.log_path = f"{log_dir}/{name}.log"
        self.popen = None

    def start(self, wait=30):
        log = open(self.log_path, "a")
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      preexec_fn=_die_with_parent)
        log.close()
        if self.health:
            wait_until(f"{self.name} healthy", lambda: self._alive() and http_get(self.health)[0] == 200, wait)
        return self

    def _alive(self):
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}); see {self.log_path}")
        return True

    def signal(self, sig):
        if self.popen and self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def kill9(self):
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def stop(self, grace=15):
        if not self.popen or self.popen.poll() is not None:
            return
        self.signal(signal.SIGCONT)
        self.popen.terminate()
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill9()

    def children(self):
        pid = self.popen.pid
        found = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
        return found


class Psql:
    def __init__(self, url):
        self.url = url

    def run(self, sql):
        done = subprocess.run(["psql", self.url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return [line for line in done.stdout.splitlines() if line]


def reading(source, seq, stamp):
    return {
        "timestamp": datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "latitude": 38.5 + (seq % 100) / 1000, "longitude": -122.1, "temperature": 20 + seq % 25,
        "humidity": 40, "wind_speed": 10.5, "wind_direction": 180, "vegetation_density": 0.4,
        "air_quality_index": 42, "source_name": source, "seq": seq,
    }


def reading_id(source, seq, stamp):
    """As core/src/envelope.rs `ReadingId::from_device` derives it."""
    return f"d:{source}:{seq}:{stamp * 1_000_000_000}"


class Device(threading.Thread):
    """A sensor with its own `seq`: sends one reading at a time at a steady rate and, like a real
    device, resends the same reading (same seq, same timestamp) until it hears a "yes"."""

    def __init__(self, source, host, port, rate, stop):
        super().__init__(daemon=True)
        self.source, self.host, self.port, self.stop = source, host, port, stop
        self.interval = 1 / rate
        self.sent = 0          # distinct readings attempted
        self.attempts = 0
        self.acked = {}        # reading_id -> time of the yes
        self.refusals = {}     # answer -> count (503, reset, timeout …)
        self.mismatch = []     # the agent's reading_id differed from the derived one
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as error:  # noqa: BLE001 — reported by the suite, never swallowed
            self.error = repr(error)

    def _run(self):
        seq, next_at = 0, time.time()
        while not self.stop.is_set():
            seq += 1
            stamp = int(time.time())
            self.sent += 1
            while not self.stop.is_set():
                self.attempts += 1
                outcome = self.send(seq, stamp)
                if outcome is True:
                    self.acked[reading_id(self.source, seq, stamp)] = time.time()
                    break
                self.refusals[outcome] = self.refusals.get(outcome, 0) + 1
                time.sleep(0.1)
            next_at = max(next_at + self.interval, time.time() - 1)
            time.sleep(max(0.0, next_at - time.time()))
        self.close()

    def note(self, outcome):
        self.refusals[outcome] = self.refusals.get(outcome, 0) + 1


class HttpDevice(Device):
    conn = None

    def send(self, seq, stamp):
        body = json.dumps(reading(self.source, seq, stamp))
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            self.conn.request("POST", "/ingest", body, {"Content-Type": "application/json"})
            response = self.conn.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return type(error).__name__
        if response.status != 202:
            return f"HTTP {response.status}"
        given = json.loads(answer).get("reading_id")
        if given != reading_id(self.source, seq, stamp):
            self.mismatch.append(given)
        return True

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class MqttDevice(Device):
    """MQTT 3.1.1, QoS 1, one publish in flight: a PUBACK is the "yes"."""

    sock = None
    packet_id = 0

    def _read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionResetError("closed by the agent")
            data += chunk
        return data

    def _read_packet(self):
        kind = self._read_exact(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return kind, self._read_exact(length)

    def _connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=5)
        body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _string(self.source)
        self.sock.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
        kind, rest = self._read_packet()
        if kind != 0x20 or rest[1] != 0:
            raise ConnectionRefusedError(f"CONNACK {rest.hex()}")

    def send(self, seq, stamp):
        payload = json.dumps(reading(self.source, seq, stamp)).encode()
        try:
            if self.sock is None:
                self._connect()
            self.packet_id = self.packet_id % 65535 + 1
            body = _string(f"sensors/{self.source}/readings") + struct.pack("!H", self.packet_id) + payload
            self.sock.sendall(bytes([0x32]) + _remaining_length(len(body)) + body)
            while True:
                kind, rest = self._read_packet()
                if kind >> 4 == 4 and struct.unpack("!H", rest[:2])[0] == self.packet_id:
                    return True
        except OSError as error:
            self.close()
            return type(error).__name__

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Namespace:
    """A network namespace for one agent, with two veth pairs to the host: one that devices use to
    reach the agent, one that the agent uses to reach the bridge (the one a partition cuts)."""

    def __init__(self, tag):
        n = 16 + os.getpid() % 200
        self.name = f"emb-faults-{tag}"
        self.ingest_host, self.ingest_ns = f"ef{tag}i0", f"ef{tag}i1"
        self.link_host, self.link_ns = f"ef{tag}b0", f"ef{tag}b1"
        self.host_ip, self.agent_ip = f"10.213.{n}.1", f"10.213.{n}.2"
        self.bridge_side_ip, self.agent_bridge_ip = f"10.213.{n}.5", f"10.213.{n}.6"
        self.made = False

    @staticmethod
    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def create(self):
        self.ip("netns", "add", self.name)
        self.made = True
        self.ip("-n", self.name, "link", "set", "lo", "up")
        for host_end, ns_end, host_ip, ns_ip in ((self.ingest_host, self.ingest_ns, self.host_ip, self.agent_ip),
                                                 (self.link_host, self.link_ns, self.bridge_side_ip,
                                                  self.agent_bridge_ip)):
            self.ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", self.name)
            self.ip("addr", "add", f"{host_ip}/30", "dev", host_end)
            self.ip("link", "set", host_end, "up")
            self.ip("-n", self.name, "addr", "add", f"{ns_ip}/30", "dev", ns_end)
            self.ip("-n", self.name, "link", "set", ns_end, "up")

    def partition(self, cut):
        self.ip("link", "set", self.link_host, "down" if cut else "up")

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.name]

    def remove(self):
        if self.made:
            # Deleting the namespace deletes the ends inside it, and with them their host peers.
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
            for end in (self.ingest_host, self.link_host):
                subprocess.run(["ip", "link", "del", end], capture_output=True, timeout=10)
            self.made = False


def can_use_netns():
    if os.geteuid() != 0:
        return "needs root for ip netns"
    probe = f"emb-faults-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"ip netns add failed: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Tmpfs:
    def __init__(self, path, size):
        self.path, self.size, self.mounted = path, size, False

    def mount(self):
        os.makedirs(self.path, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "emberline-faults", self.path],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"mount -t tmpfs failed: {done.stderr.strip()}"
        self.mounted = True
        return None

    def free(self):
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def unmount(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], capture_output=True, timeout=10)
            self.mounted = False
