"""Load test for an Emberline agent, in the reference system's style.

`IngestUser` posts one reading per request to `POST /ingest` — the reference payload, unchanged
(its Locust file sent `humidity` as an int, so does this one). `BatchUser` posts 100 readings per
request to `POST /v1/readings`. Both count any answer other than 202 as a failure.

Headless, CSV output (what `scripts/bench-locust` runs against one agent):

    locust -f locust/locustfile.py --headless -u 300 -r 50 -t 60s \
        --host http://127.0.0.1:8080 --csv /tmp/emberline-locust IngestUser

Without a user class on the command line Locust mixes both (weights 9:1).
"""
import random
from datetime import datetime, timezone

from locust import HttpUser, between, task

# A fixed region (the reference system's demo area, Los Angeles County).
LAT, LON = 34.05, -118.25


def reading(sensor):
    return {
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "latitude": round(LAT + random.uniform(-0.5, 0.5), 5),
        "longitude": round(LON + random.uniform(-0.5, 0.5), 5),
        "temperature": round(random.uniform(15, 45), 1),
        "humidity": random.randint(5, 90),
        "wind_speed": round(random.uniform(0, 40), 1),
        "wind_direction": round(random.uniform(0, 359), 1),
        "vegetation_density": round(random.uniform(0, 1), 2),
        "air_quality_index": random.randint(0, 300),
        "source_name": sensor,
    }


def accepted(response):
    if response.status_code != 202:
        response.failure(f"{response.status_code}: {response.text[:200]}")


class IngestUser(HttpUser):
    """One sensor posting a reading at a time, as in the reference load test."""

    weight = 9
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.sensor = f"locust-{random.randrange(1_000_000)}"

    @task
    def ingest(self):
        with self.client.post("/ingest", json=reading(self.sensor), catch_response=True) as response:
            accepted(response)


class BatchUser(HttpUser):
    """A gateway forwarding 100 sensors' readings per request."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self):
        base = random.randrange(1_000_000)
        self.sensors = [f"gateway-{base}-{i}" for i in range(100)]

    @task
    def batch(self):
        body = [reading(s) for s in self.sensors]
        with self.client.post("/v1/readings", json=body, catch_response=True) as response:
            accepted(response)
