#!/usr/bin/env python3
"""Writes the committed seed inputs of every fuzz target into corpus/<target>/ from real payloads:
the reference system's reading, envelopes as agents store them, a batch as the forwarder sends it
(identity and gzip), a heartbeat, and MQTT 3.1.1 and 5 sessions as devices open them.
Run it again after changing it; the files are small and deterministic."""
import gzip, json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))

READING = {"timestamp": "2025-05-24T18:03:11.123456Z", "latitude": 34.05, "longitude": -118.53,
           "temperature": 42.5, "humidity": 12, "wind_speed": 35.2, "wind_direction": 45,
           "vegetation_density": 0.8, "air_quality_index": 180, "source_name": "ridge-7"}
WITH_SEQ = dict(READING, timestamp="2025-05-24T11:03:11-07:00", seq=41, firmware="1.2.0",
                extra={"battery": 3.7, "tags": ["north", None, True]})
BAD = {"timestamp": "2025-05-24T18:03:11.1234567890Z", "latitude": 91, "longitude": "x",
       "temperature": 1e308, "humidity": -1, "wind_speed": None, "wind_direction": 360,
       "vegetation_density": 2, "air_quality_index": 1001, "source_name": "a\u0007b", "seq": -1}

def envelope(n, reading, classification=None):
    env = {"v": 1, "reading_id": f"a:edge-1:{n}", "agent_id": "edge-1",
           "received_at": "2025-05-24T18:03:12.5Z", "protocol": "mqtt" if n % 2 else "http",
           "reading": reading}
    if classification:
        env["classification"] = classification
    return json.dumps(env, separators=(",", ":")).encode()

CLASSIFIED = {"intensity": "high", "confidence_score": 0.93, "rules_fired": ["hot-and-dry", "wind"],
              "rules_version": "default-1", "detected_at": "2025-05-24T18:03:13Z"}
BATCH = b"\n".join([envelope(1, READING), envelope(2, WITH_SEQ), envelope(3, READING, CLASSIFIED)]) + b"\n"
HEARTBEAT = json.dumps({"agent_id": "edge-1", "version": "0.1.0", "sent_at": "2025-05-24T18:03:14Z",
                        "buffer_depth": 12, "buffer_bytes": 4096,
                        "oldest_buffered_age_seconds": 1.5}).encode()

def gz(data):
    return gzip.compress(data, mtime=0)

def remaining(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)

def packet(first, body):
    return bytes([first]) + remaining(len(body)) + body

def s(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(data)) + data

def props(data=b""):
    return remaining(len(data)) + data

def connect(level, user=True, will=False):
    flags = 0x02 | (0xC0 if user else 0) | (0x0C if will else 0)  # clean, user+pass, will qos1
    body = s("MQTT") + bytes([level, flags]) + struct.pack(">H", 30)
    if level == 5:
        body += props(bytes([0x11]) + struct.pack(">I", 60) + bytes([0x27]) + struct.pack(">I", 4096))
    body += s("device-1")
    if will:
        body += (props() if level == 5 else b"") + s("sensors/ridge-7/status") + s("offline")
    if user:
        body += s("ridge-7") + s("secret")
    return packet(0x10, body)

def publish(level, topic, payload, qos=1, pkid=1):
    body = s(topic) + (struct.pack(">H", pkid) if qos else b"") + (props() if level == 5 else b"") + payload
    return packet(0x30 | (qos << 1), body)

def subscribe(level):
    body = struct.pack(">H", 7) + (props() if level == 5 else b"") + s("alerts/#") + bytes([1])
    return packet(0x82, body)

def session(level):
    payload = json.dumps(READING).encode()
    return (connect(level) + publish(level, "sensors/ridge-7/readings", payload)
            + publish(level, "sensors/ridge-7/readings", payload, qos=0)
            + publish(level, "elsewhere", b"{}", pkid=2)
            + publish(level, "sensors/other/readings", json.dumps(BAD).encode(), pkid=3)
            + packet(0xC0, b"") + subscribe(level)
            + packet(0xA2, struct.pack(">H", 8) + (props() if level == 5 else b"") + s("alerts/#"))
            + (packet(0xE0, b"\x00\x00") if level == 5 else packet(0xE0, b"")))

LIMITS = bytes([64, 3])  # mqtt target: max packet 16 + 64*64 bytes, 3 packets a run

SEEDS = {
    "reading": {"reference": json.dumps(READING).encode(), "seq-offset-extras": json.dumps(WITH_SEQ).encode(),
                "every-field-bad": json.dumps(BAD).encode()},
    "batch": {"three-envelopes": BATCH, "heartbeat": HEARTBEAT,
              "bad-second-line": envelope(1, READING) + b"\r\n" + b'{"v":2}\n'},
    "bridge_body": {"identity": b"\x00" + BATCH, "gzip": b"\x01" + gz(BATCH), "gzip-here": b"\x02" + BATCH,
                    "gzip-agent-checked": b"\x05" + gz(BATCH), "gzip-two-members": b"\x01" + gz(BATCH) + gz(BATCH)},
    "mqtt": {"v4-session": LIMITS + session(4), "v5-session": LIMITS + session(5),
             "v5-will-qos1": LIMITS + connect(5, will=True) + packet(0xC0, b""),
             "v31-refused": LIMITS + packet(0x10, s("MQIsdp") + bytes([3, 2]) + struct.pack(">H", 60) + s("x"))},
}

for target, files in SEEDS.items():
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(HERE, target, name), "wb") as f:
            f.write(data)
