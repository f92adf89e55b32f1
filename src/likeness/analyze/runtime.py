"""Where every network runs: ONNX Runtime sessions with the thread count and device chosen in one place, and
ONNX graphs that we build ourselves from weights that ship in installed packages, cached under LIKENESS_HOME.

A cached graph is named after its source file's SHA-256, so a new release of the weights builds a new graph and a
stale or half-written one is never used (it is written to a temporary name and renamed into place).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from likeness.errors import ConfigurationError

if TYPE_CHECKING:
    import onnx
    import onnxruntime

DEVICES = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def cached_model(cache_dir: Path, name: str, sources: list[Path], build: Callable[[], onnx.ModelProto]) -> Path:
    """The graph ``name`` built from ``sources`` (weights files), built and saved on first use."""
    digest = hashlib.sha256("".join(file_digest(p) for p in sources).encode()).hexdigest()[:16]
    target = cache_dir / f"{name}-{digest}.onnx"
    if target.exists():
        return target
    import onnx

    cache_dir.mkdir(parents=True, exist_ok=True)
    model = build()
    onnx.checker.check_model(model)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(model.SerializeToString())
        os.replace(tmp, target)  # several workers may build at once: each rename is whole
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def providers(device: str) -> list[str]:
    """The execution providers for a device setting; a device this install cannot use is a configuration error."""
    import onnxruntime

    if device not in DEVICES:
        raise ConfigurationError(f"unknown device {device!r}; one of {', '.join(DEVICES)}")
    wanted = DEVICES[device]
    if wanted[0] not in onnxruntime.get_available_providers():
        raise ConfigurationError(
            f"device {device!r} needs {wanted[0]}, which this onnxruntime does not have "
            "(install the gpu extra: pip install 'likeness[gpu]')"
        )
    return wanted


def session(model: Path | bytes, threads: int, device: str = "cpu") -> onnxruntime.InferenceSession:
    """One ONNX Runtime session; ``threads`` 0 lets the runtime use every core (scan workers use 1 each)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    source: Any = str(model) if isinstance(model, Path) else model
    return onnxruntime.InferenceSession(source, options, providers=providers(device))
