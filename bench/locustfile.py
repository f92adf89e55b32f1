"""Load for bench/api.py: one endpoint (BENCH_ENDPOINT: check | lookup, BENCH_LOOKUP_BATCH hashes a request),
each simulated client as fast as it can, or at BENCH_USER_RATE requests/s. Not a test: locust imports it."""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant, constant_throughput, task

from bench.common import thumbnail

ENDPOINT = os.environ.get("BENCH_ENDPOINT", "check")
RATE = float(os.environ.get("BENCH_USER_RATE", "0"))
BATCH = int(os.environ.get("BENCH_LOOKUP_BATCH", "1"))  # hashes per lookup request
HEADERS = {"Authorization": f"Bearer {os.environ.get('BENCH_TOKEN', '')}"}


THUMBNAIL = thumbnail()


class ApiClient(HttpUser):
    wait_time = constant_throughput(RATE) if RATE else constant(0)

    @task
    def call(self) -> None:
        if ENDPOINT == "check":
            files = {"file": ("thumb.jpg", THUMBNAIL, "image/jpeg")}
            self.client.post("/v1/check", files=files, headers=HEADERS, name="/v1/check")
        else:
            unseen = [random.getrandbits(256).to_bytes(32, "big").hex() for _ in range(BATCH)]  # pictures never seen
            self.client.post("/v1/hashes/lookup", json={"hashes": unseen}, headers=HEADERS, name="/v1/hashes/lookup")
