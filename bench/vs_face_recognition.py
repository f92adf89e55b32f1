"""likeness vs the ``face_recognition`` CLI on the same unknown folder against the same known people.

    python bench/vs_face_recognition.py        (needs: pip install --no-deps face_recognition==1.3.0)

Known people: every eval-data identity with more than 2 photos, its first 2 photos as references. Unknown
folder: the remaining photos, the distractors and the no-face pictures. For each unknown photo a tool's answer
is the set of names it gives; a name equal to the photo's identity is a true positive, any other name a false
positive, and an identity photo whose identity is not named is a miss. Both tools run with --cpus / workers
set to the core count; wall time covers everything each tool needs (likeness: enroll + scan, in a fresh
embedded database; face_recognition: encoding the known folder + checking the unknown folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import distractors, identities, noface, table, write_section

REFS = 2


def build(work: Path) -> tuple[dict[str, list[Path]], Path, dict[str, str | None]]:
    known, unknown, truth = {}, work / "unknown", {}
    unknown.mkdir(parents=True)
    for ident, files in identities().items():
        if len(files) <= REFS:
            continue
        known[ident] = files[:REFS]
        for f in files[REFS:]:
            link = unknown / f"{ident}__{f.name}"
            link.symlink_to(f)
            truth[link.name] = ident
    for f in distractors() + noface():
        link = unknown / f"other__{f.parent.name}__{f.name}"
        link.symlink_to(f)
        truth[link.name] = None
    return known, unknown, truth


def score(answers: dict[str, set[str]], truth: dict[str, str | None]) -> tuple[float, float, int, int]:
    tp = sum(1 for name, ident in truth.items() if ident and ident in answers.get(name, set()))
    fp = sum(len(names - {truth[name]}) for name, names in answers.items())
    positives = sum(1 for ident in truth.values() if ident)
    return tp / max(tp + fp, 1), tp / positives, tp, fp


def run_face_recognition(known: dict[str, list[Path]], unknown: Path, work: Path) -> tuple[float, dict[str, set[str]]]:
    folder = work / "known"
    folder.mkdir()
    for ident, refs in known.items():
        for i, ref in enumerate(refs):
            (folder / f"{ident}__{i}{ref.suffix}").symlink_to(ref)
    cli = shutil.which("face_recognition") or str(Path(sys.executable).with_name("face_recognition"))
    started = time.perf_counter()
    out = subprocess.run(
        [cli, "--cpus", str(os.cpu_count()), str(folder), str(unknown)], capture_output=True, text=True, check=True
    ).stdout
    elapsed = time.perf_counter() - started
    answers: dict[str, set[str]] = defaultdict(set)
    for line in out.splitlines():
        if "," not in line:  # its own warnings ("No faces found in ...") go to stdout too
            continue
        path, name = line.rsplit(",", 1)
        if name not in ("unknown_person", "no_persons_found"):
            answers[Path(path).name].add(name.split("__")[0])
    return elapsed, answers


def run_likeness(known: dict[str, list[Path]], unknown: Path, work: Path) -> tuple[float, dict[str, set[str]]]:
    """The two commands a user runs: ``likeness subjects import`` of a known-people folder (one sub-folder per
    person; a photo without a face is left out, as face_recognition skips it) and ``likeness scan``."""
    from likeness.services import review
    from likeness.services.app import open_app
    from likeness.settings import Settings

    folder = work / "people"
    for ident, refs in known.items():
        (folder / ident).mkdir(parents=True)
        for i, ref in enumerate(refs):
            (folder / ident / f"{i}{ref.suffix}").symlink_to(ref)
    env = {**os.environ, "LIKENESS_HOME": str(work / "home"), "LIKENESS_SCAN__WORKERS": str(os.cpu_count())}
    cli = shutil.which("likeness") or str(Path(sys.executable).with_name("likeness"))
    started = time.perf_counter()
    subprocess.run([cli, "subjects", "import", "--largest-face", str(folder)], env=env, capture_output=True)
    subprocess.run([cli, "scan", "--json", str(unknown)], env=env, capture_output=True)  # exit 1: some files fail
    elapsed = time.perf_counter() - started
    answers: dict[str, set[str]] = defaultdict(set)
    with open_app(Settings(home=work / "home")) as app:
        for row in review.list_matches(app, limit=None):
            answers[Path(row.location).name].add(row.target)
    return elapsed, answers


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        known, unknown, truth = build(work)
        fr_time, fr_answers = run_face_recognition(known, unknown, work)
        lk_time, lk_answers = run_likeness(known, unknown, work)
    rows = []
    for tool, elapsed, answers in (
        ("face_recognition 1.3.0 CLI (tolerance 0.6)", fr_time, fr_answers),
        ("likeness subjects import + scan (defaults)", lk_time, lk_answers),
    ):
        p, r, tp, fp = score(answers, truth)
        rows.append([tool, f"{elapsed:.1f}", f"{fr_time / elapsed:.2f}x", f"{p:.3f}", f"{r:.3f}", tp, fp])
        print(rows[-1], flush=True)
    positives = sum(1 for t in truth.values() if t)
    write_section(
        "vs_face_recognition",
        "likeness vs face_recognition",
        f"""
Same unknown folder ({len(truth)} pictures: {positives} of {len(known)} known people, the rest distractors and
no-face pictures), same known people ({REFS} reference photos each), `--cpus {os.cpu_count()}` for
face_recognition and {os.cpu_count()} scan workers for likeness. Wall time includes everything each tool does, as
a user runs it (likeness: `likeness subjects import PEOPLE` then `likeness scan UNKNOWN`, from a fresh embedded
PostgreSQL; face_recognition: its one command encoding the known folder and checking the unknown one). Speed is
face_recognition's time over each tool's. Goal: >= 5x, precision >= 0.99, recall >= face_recognition's.

{table(["tool", "wall s", "speed vs face_recognition", "precision", "recall", "true pos.", "false pos."], rows)}

Why the difference: face_recognition prints *every* known person within Euclidean distance 0.6, so one face can
be given several names; likeness names a face only for subjects whose cosine similarity to the subject's centroid
or references reaches the calibrated low tier (docs/calibration.md), and only for the subjects within
`faces.runner_up_margin` (0.02) of the face's best one: a face is one person, so a look-alike well below the best
subject is not named (it was every false name here before the rule). Both compute dlib's ResNet vectors;
face_recognition with dlib's HOG detector and dlib-bin's network, likeness with MTCNN and the same network on ONNX
Runtime (bench/embeddings.py), PDQ, NSFW and provenance on top.
""",
    )


if __name__ == "__main__":
    main()
