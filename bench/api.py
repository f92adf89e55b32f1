"""The HTTP API under load: locust headless on loopback against ``likeness serve``.

    python -m bench.api        (needs: pip install locust; `make bench` installs it)

Two endpoints, each alone: ``POST /v1/check`` with a ~450 px thumbnail showing a face (analysis in the API's
watched worker, matching, abuse controls) and ``POST /v1/hashes/lookup`` with one unseen PDQ hash against a bank of
BENCH_API_HASHES (default 1,000,000) hashes. Saturation: the best throughput over a ladder of concurrent clients
(each sending as fast as it can); then the same endpoint at 80% of that rate, paced. Abuse controls stay on, with
limits raised far above the load and the bench account exempt from enumeration (an HMA-style integration), so their
cost is in the figures. Locust, the server and PostgreSQL share the machine's cores.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, table, thumbnail, write_section

HASHES = int(os.environ.get("BENCH_API_HASHES", "1000000"))
LADDER = (1, 2, 4, 8, 16)
STAGE_S = 12
BANK = "bench"
LOOKUP_BATCH = 100  # an integration sends the hashes of what its platform received in the last moments together


def _cli(name: str) -> str:
    return shutil.which(name) or str(Path(sys.executable).with_name(name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _account(env: dict[str, str]) -> tuple[int, str]:
    """An admin account and a token, made with the CLI as an operator would."""
    made = subprocess.run([_cli("likeness"), "users", "add", "bench", "--role", "admin"], env=env, capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    account = int(re.search(r"account (\d+)", made).group(1))  # type: ignore[union-attr]
    printed = subprocess.run([_cli("likeness"), "tokens", "create", "bench", "--label", "bench"], env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    token = next(word for word in printed.split() if word.startswith("lk_"))
    return account, token


def _fill_bank(home: Path) -> None:
    """HASHES random PDQ hashes in one bank, written by PostgreSQL itself (the product's import would take minutes
    and is not what is measured here)."""
    from sqlalchemy import text

    from likeness.analyze.hashing import PDQ_ALGORITHM
    from likeness.services import hashes
    from likeness.services.app import open_app
    from likeness.settings import Settings

    with open_app(Settings(home=home)) as app:
        hashes.require_bank(app, BANK, create=True, actor="bench")
        with app.store.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO protected_hashes (bank, algorithm, digest, quality) SELECT :bank, :algorithm, "
                    "decode(md5(i::text) || md5((-i)::text), 'hex'), 100 FROM generate_series(1, :n) i"
                ),
                {"bank": BANK, "algorithm": PDQ_ALGORITHM, "n": HASHES},
            )


def _wait(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def _locust(
    env: dict[str, str], url: str, endpoint: str, users: int, rate: float, out: Path, seconds: int = STAGE_S
) -> dict[str, float]:
    """One locust run; its aggregated row: requests/s, failures, median and 99th percentile (ms)."""
    prefix = out / f"{endpoint}-{users}-{rate:g}-{seconds}"
    run_env = {**env, "BENCH_USER_RATE": str(rate / users if rate else 0), "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [_cli("locust"), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "-u", str(users), "-r",
         str(users), "-t", f"{seconds}s", "--host", url, "--csv", str(prefix), "--only-summary"],
        env=run_env, capture_output=True, check=False,
    )  # fmt: skip
    with open(f"{prefix}_stats.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {
        "rps": float(row["Requests/s"]),
        "requests": float(row["Request Count"]),
        "failures": float(row["Failure Count"]),
        "p50": _number(row["50%"]),
        "p99": _number(row["99%"]),
    }


def _warm_up(url: str, token: str) -> None:
    """One check and one lookup before anything is timed: the worker's models, the bank's index."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        client.post("/v1/check", files={"file": ("t.jpg", thumbnail(), "image/jpeg")}).raise_for_status()
        client.post("/v1/hashes/lookup", json={"hashes": ["0" * 64]}).raise_for_status()


def _number(text: str) -> float:
    return float("nan") if text in ("", "N/A") else float(text)


def measure(env: dict[str, str], url: str, endpoint: str, out: Path, batch: int = 1) -> list[list[object]]:
    """The ladder, then 80% of its best rate; each row also in lookups/s (hashes a second) for lookups."""
    env = {**env, "BENCH_ENDPOINT": endpoint, "BENCH_LOOKUP_BATCH": str(batch)}
    _warm_up(url, env["BENCH_TOKEN"])
    ladder = [(users, _locust(env, url, endpoint, users, 0, out)) for users in LADDER]
    users, best = max(ladder, key=lambda pair: pair[1]["rps"])
    paced = _locust(env, url, endpoint, users, 0.8 * best["rps"], out)
    rows: list[list[object]] = []
    for label, r in [*((f"{u} clients, unpaced", r) for u, r in ladder), (f"80% of {best['rps']:.1f}/s", paced)]:
        name = endpoint if endpoint == "check" else f"lookup, {batch} hash(es) a request"
        rows.append([name, label, f"{r['rps']:.1f}", f"{r['rps'] * (batch if endpoint == 'lookup' else 1):.0f}",
                     int(r["requests"]), int(r["failures"]), f"{r['p50']:.0f}", f"{r['p99']:.0f}"])  # fmt: skip
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home, port = Path(tmp) / "home", _free_port()
        env = {**os.environ, "LIKENESS_HOME": str(home), "LIKENESS_LOG_LEVEL": "WARNING"}
        account, token = _account(env)
        env.update({
            "BENCH_TOKEN": token,
            "LIKENESS_ABUSE__TOKEN_RATE_PER_S": "1e9", "LIKENESS_ABUSE__TOKEN_BURST": "1e9",
            "LIKENESS_ABUSE__IP_RATE_PER_S": "1e9", "LIKENESS_ABUSE__IP_BURST": "1e9",
            "LIKENESS_ABUSE__ENUMERATION_EXEMPT_ACCOUNTS": f"[{account}]",
        })  # fmt: skip
        started = time.perf_counter()
        _fill_bank(home)
        filled = time.perf_counter() - started
        server = subprocess.Popen([_cli("likeness"), "serve", "--port", str(port)], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait(f"{url}/health")
            rows = [
                *measure(env, url, "check", Path(tmp)),
                *measure(env, url, "lookup", Path(tmp)),
                *measure(env, url, "lookup", Path(tmp), batch=LOOKUP_BATCH),
            ]
        finally:
            server.terminate()
            server.wait(30)
    for row in rows:
        print(row, flush=True)
    write_section(
        "api",
        "HTTP API under load (locust, loopback)",
        f"""
`likeness serve` (one uvicorn process, the embedded PostgreSQL) and locust on the same {os.cpu_count()} cores.
`/v1/check`: a ~450 px JPEG thumbnail with one face (astronaut), analysed in the API's watched worker and matched
(no subjects enrolled). `/v1/hashes/lookup`: one random PDQ hash a request against a bank of {HASHES:,} hashes
(bank filled in {filled:.0f} s by SQL). Abuse controls on, limits raised above the load, the bench account exempt
from enumeration (an integration). Each row is a {STAGE_S} s locust run; "unpaced" clients send as fast as they
can; the last row of each endpoint paces the load at 80% of its best rate. Latencies in ms. Lookups are measured
with one hash a request (HMA's lookup) and with {LOOKUP_BATCH} (an integration batching what it received).
Goals: 0 errors; `/v1/check` p99 < 250 ms at 80% of saturation; lookups >= 1,000/s.

{table(["endpoint", "load", "requests/s", "checks or lookups/s", "requests", "errors", "p50 ms", "p99 ms"], rows)}
""",
    )


if __name__ == "__main__":
    main()
