"""The worker pool's per-file budget, enforced from outside the analysing code: a file over its wall time or memory
is recorded as too_costly, its worker is replaced, and the other files are analysed as if nothing happened."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from likeness.analyze import Analysis
from likeness.errors import ConfigurationError
from likeness.services.pool import AnalysisPool
from likeness.settings import ScanSettings, Settings
from tests import images

pytestmark = pytest.mark.timeout(300)


def _settings(tmp_path: Path, **scan: object) -> Settings:
    """Decoding and pre-filtering only, so that normal files cost milliseconds and the costly ones stand out."""
    scan_settings = ScanSettings(workers=1, **scan)  # type: ignore[arg-type]
    return Settings(home=tmp_path / "home", scan=scan_settings, analyzers=["prefilter", "pdq"])


def _run(pool: AnalysisPool, files: dict[str, bytes]) -> dict[str, object]:
    for key, data in files.items():
        pool.submit(key, data)
    done: dict[str, object] = {}
    while pool.in_flight:
        done.update(pool.collect())  # type: ignore[arg-type]
    return done


def _small() -> dict[str, bytes]:
    return {
        "coffee": images.encode(images.NO_FACE["coffee"]()),
        "face": images.encode(images.astronaut_face_crop()),
    }


def test_over_the_wall_time_budget(tmp_path: Path) -> None:
    slow = images.encode(images.resize(images.astronaut(), 10.0), "PNG")  # 5120 px: seconds to decode and hash
    with AnalysisPool(_settings(tmp_path, file_seconds=0.5, batch_files=1), 1) as pool:
        done = _run(pool, {"slow": slow, **_small()})
    assert done["slow"].kind == "too_costly" and "0.5 s" in str(done["slow"])  # type: ignore[attr-defined]
    assert isinstance(done["coffee"], Analysis) and isinstance(done["face"], Analysis)


def test_over_the_memory_budget_in_a_batch(tmp_path: Path) -> None:
    """A batch of small files plus one that needs far more memory than allowed: only that one is refused."""
    big = images.encode(images.resize(images.grace_hopper(), 12.0), "PNG")  # 6144 x 7200 px: 44 Mpx to decode
    with AnalysisPool(_settings(tmp_path, file_memory_mib=400, batch_max_bytes=64 << 20), 1) as pool:
        done = _run(pool, {**_small(), "big": big, "again": images.encode(images.NO_FACE["rocket"]())})
    assert done["big"].kind == "too_costly"  # type: ignore[attr-defined]
    assert all(isinstance(done[k], Analysis) for k in ("coffee", "face", "again"))


def test_a_worker_that_dies_is_replaced_and_its_file_retried(tmp_path: Path) -> None:
    slow = images.encode(images.resize(images.astronaut(), 6.0), "PNG")
    with AnalysisPool(_settings(tmp_path, batch_files=1), 1) as pool:
        pool.submit("slow", slow)
        deadline = time.monotonic() + 60
        while not [w for w in pool._workers if w.job is not None and w.job.active == 0]:
            pool.collect(timeout=0.05)
            assert time.monotonic() < deadline
        victim = pool._workers[0].process.pid
        psutil.Process(victim).kill()  # as a native crash would
        done = _run(pool, _small())
        while pool.in_flight:
            done.update(pool.collect())  # type: ignore[arg-type]
    assert isinstance(done["slow"], Analysis) and isinstance(done["coffee"], Analysis)
    assert all(w.process.pid != victim for w in pool._workers)


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: the kernel kills the workers when the process that started them is killed."""
    code = (
        "import sys, time; from pathlib import Path; from likeness.services.pool import AnalysisPool; "
        "from likeness.settings import Settings, ScanSettings; "
        "p = AnalysisPool(Settings(home=Path(sys.argv[1]), scan=ScanSettings(workers=2)), 2); p._dispatch(); "
        "print('up', flush=True); time.sleep(600)"
    )
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None and parent.stdout.readline().strip() == "up"
    deadline = time.monotonic() + 60
    while len(psutil.Process(parent.pid).children()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    children = psutil.Process(parent.pid).children()
    parent.kill()
    parent.wait()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.pid for p in alive]


def test_a_worker_that_cannot_start_is_a_configuration_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path).model_copy(update={"analyzers": ["prefilter", "nonsense"]})
    with AnalysisPool(settings, 1) as pool, pytest.raises(ConfigurationError, match="cannot start"):
        _run(pool, _small())


def test_close_stops_a_busy_worker(tmp_path: Path) -> None:
    pool = AnalysisPool(_settings(tmp_path), 1)
    pool.submit("coffee", _small()["coffee"])
    started = time.monotonic()
    closer = threading.Thread(target=pool.close)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive() and time.monotonic() - started < 30
