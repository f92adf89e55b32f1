"""Face-matching accuracy on eval-data identities, and how the default tier thresholds are calibrated.

    python bench/accuracy.py

Identities are split in two halves by sorted name (even / odd). Thresholds are chosen on the even half only
(from the impostor-pair similarity distribution: the lowest threshold whose false-accept rate is under a target)
and every figure below the calibration table is measured on the odd half, which the choice never saw.
"""

from __future__ import annotations

import numpy as np

from bench.common import OUT, table, write_section
from bench.embeddings import Embedded, load
from likeness.registry.subjects import centroid
from likeness.settings import Settings

TARGET_FAR = {"low": 1e-3, "medium": 1e-4, "high": 1e-5}


def pairs(emb: Embedded, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of genuine and impostor pairs among rows in ``keep`` that have a face."""
    idx = np.flatnonzero(keep & emb.found)
    vectors, labels = emb.vectors[idx], np.array(emb.labels)[idx]
    sims = vectors @ vectors.T
    upper = np.triu_indices(len(idx), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    distractor = np.char.startswith(labels.astype(str), "distractor:")
    both_distractors = (distractor[:, None] & distractor[None, :])[upper]
    s = sims[upper]
    return s[same & ~both_distractors], s[~same]


def threshold_for(impostors: np.ndarray, far: float) -> float:
    """Smallest threshold whose false-accept rate on these impostor pairs is at most ``far``."""
    ranked = np.sort(impostors)[::-1]
    allowed = int(np.floor(far * len(ranked)))
    return float(ranked[allowed]) + 1e-4 if allowed < len(ranked) else float(ranked[-1])


def rates(genuine: np.ndarray, impostors: np.ndarray, t: float) -> tuple[float, float]:
    return float((impostors >= t).mean()), float((genuine < t).mean())


def subject_level(
    emb: Embedded, keep: np.ndarray, t: float, refs_per_subject: int = 2
) -> dict[str, tuple[float, float]]:
    """Enroll the first photos of each identity, probe with the rest plus distractors; precision and recall of
    'who is this' answers for two scoring rules: the centroid alone, and the best of centroid and references."""
    labels = np.array(emb.labels)
    ids = sorted({lab for lab, k in zip(labels, keep, strict=True) if k and not lab.startswith("distractor:")})
    subjects, probes = {}, []
    for ident in ids:
        rows = [i for i in np.flatnonzero(labels == ident) if emb.found[i]]
        if len(rows) <= refs_per_subject:
            continue
        refs = emb.vectors[rows[:refs_per_subject]]
        center, _ = centroid(refs, np.ones(len(refs), np.float32), t, 3)
        subjects[ident] = (center, refs)
        probes += [(i, ident) for i in rows[refs_per_subject:]]
    probes += [(i, None) for i in np.flatnonzero(np.char.startswith(labels.astype(str), "distractor:")) if emb.found[i]]
    out = {}
    for rule in ("centroid", "best of centroid and references"):
        tp = fp = fn = 0
        for i, truth in probes:
            v = emb.vectors[i]
            scores = {
                s: float(v @ c) if rule == "centroid" else max(float(v @ c), float((r @ v).max()))
                for s, (c, r) in subjects.items()
            }
            best = max(scores, key=scores.__getitem__)
            named = best if scores[best] >= t else None
            tp += named is not None and named == truth
            fp += named is not None and named != truth
            fn += truth is not None and named != truth
        out[rule] = (tp / max(tp + fp, 1), tp / max(tp + fn, 1))
    return out


def roc_plot(genuine: np.ndarray, impostors: np.ndarray, marks: dict[str, float]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = np.linspace(-0.2, 1.0, 1200)
    far = np.array([(impostors >= t).mean() for t in ts])
    tar = np.array([(genuine >= t).mean() for t in ts])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.semilogx(np.maximum(far, 1e-6), tar, label="dlib ResNet, cosine similarity")
    for name, t in marks.items():
        f, r = rates(genuine, impostors, t)
        ax.plot(max(f, 1e-6), 1 - r, "o", label=f"{name} tier (t={t:.3f})")
    ax.set_xlabel("false accept rate (impostor pairs; 0 is drawn at 1e-6)")
    ax.set_ylabel("true accept rate (genuine pairs)")
    ax.set_title("ROC on held-out eval-data identities")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    path = OUT.parent.parent / "docs" / "roc.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path.name


def main() -> None:
    emb = load()
    labels = np.array(emb.labels)
    names = sorted({lab for lab in labels if not lab.startswith("distractor:")})
    even = {n for i, n in enumerate(names) if i % 2 == 0}
    is_distractor = np.char.startswith(labels.astype(str), "distractor:")
    calib = np.array([lab in even for lab in labels]) | is_distractor
    held = ~np.array([lab in even for lab in labels])  # odd identities plus distractors
    g_cal, i_cal = pairs(emb, calib)
    chosen = {tier: threshold_for(i_cal, far) for tier, far in TARGET_FAR.items()}
    g, imp = pairs(emb, held)
    default = Settings().faces
    configured = {"low": default.tier_low, "medium": default.tier_medium, "high": default.tier_high}
    detect = [
        [fam, f"{emb.found[np.char.startswith(labels.astype(str), fam)].mean():.2f}"]
        for fam in ("deepface", "fr-", "openface", "facenet", "faceapi", "orl", "yale", "distractor")
    ]
    calib_rows = [
        [
            t,
            f"{TARGET_FAR[t]:g}",
            f"{chosen[t]:.3f}",
            f"{configured[t]:.3f}",
            *(f"{x:.4f}" for x in rates(g, imp, configured[t])),
        ]
        for t in TARGET_FAR
    ]
    subj = subject_level(emb, held, default.tier_low)
    acc_t = default.tier_low
    far, frr = rates(g, imp, acc_t)
    balanced = 1 - (far + frr) / 2
    plot = roc_plot(g, imp, configured)
    write_section(
        "accuracy",
        "Face-matching accuracy and tier calibration",
        f"""
Embeddings: the product's decode + dlib engine on every photo of `faces/` and `distractors/`
({int(emb.found.sum())} of {len(emb.found)} photos had a detectable face; the largest face of each is used).
Calibration half: {len(even)} identities ({len(g_cal)} genuine / {len(i_cal)} impostor pairs, distractors included);
held-out half: {len(names) - len(even)} identities ({len(g)} genuine / {len(imp)} impostor pairs).

Face found, by source family:

{table(["family", "detected"], detect)}

**Calibration** (threshold chosen on the calibration half for the target false-accept rate; rates measured on
the held-out half at the configured default):

{table(["tier", "target FAR", "chosen", "configured default", "held-out FAR", "held-out FRR"], calib_rows)}

**Pair accuracy** at the default match threshold ({acc_t:.3f}, the low tier): FAR {far:.4f}, FRR {frr:.4f},
balanced accuracy {balanced:.3f}. ROC: [`docs/{plot}`]({plot}).

**Subject level** (held-out identities; the first 2 photos enrolled, the rest and all distractors probed; a probe
is named after the best-scoring subject if that score reaches the low tier):

{table(["scoring rule", "precision", "recall"], [[k, f"{p:.3f}", f"{r:.3f}"] for k, (p, r) in subj.items()])}
""",
    )


if __name__ == "__main__":
    main()
