"""The fixed cost of a command: `likeness --help` and `likeness subjects list` (warm: the embedded server already
running, joined by the command), against a bare `python -c pass` in the same run.

    python -m bench.startup
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import table, write_section

RUNS = 10


def best(args: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(args, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    cli = shutil.which("likeness") or str(Path(sys.executable).with_name("likeness"))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "LIKENESS_HOME": home}
        env.pop("LIKENESS_DATABASE_URL", None)
        code = "import time; from likeness.services.app import open_app; a = open_app(); print('up', flush=True); "
        code += "time.sleep(600)"
        holder = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "up"  # server up, schema made
            rows = [
                ["python -c pass", best([sys.executable, "-c", "pass"], env)],
                ["likeness --help", best([cli, "--help"], env)],
                ["likeness subjects list (warm)", best([cli, "subjects", "list"], env)],
            ]
        finally:
            holder.kill()
            holder.wait()
    base = float(rows[0][1])
    shown = [[name, f"{float(s):.3f}", f"{float(s) / base:.1f}x"] for name, s in rows]
    for row in shown:
        print(row, flush=True)
    write_section(
        "startup",
        "Fixed cost of a command",
        f"""
Best of {RUNS} runs of each command, wall time in seconds, against a bare interpreter start in the same run.
"Warm": another process keeps the embedded server running, so the command joins it (the usual case on a
machine that works). Goals: `--help` < 0.3 s, `subjects list` < 0.5 s.

{table(["command", "seconds", "vs python -c pass"], shown)}
""",
    )


if __name__ == "__main__":
    main()
