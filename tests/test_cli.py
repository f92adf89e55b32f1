"""A command line that never lies: exit codes (0 fine, 1 some targets failed, 2 usage, 3 configuration), unknown
choices refused, one clear line for every user error and never a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from likeness.cli.main import app
from likeness.settings import Settings, get_settings
from tests import images


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """``run(*args, **env)`` -> (exit code, stdout, stderr): the CLI in this process, on this test's database."""
    monkeypatch.setenv("LIKENESS_HOME", str(settings.home))
    monkeypatch.setenv("LIKENESS_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("LIKENESS_SCAN__WORKERS", "1")
    runner = CliRunner()

    def invoke(*args: str, **env: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            result = runner.invoke(app, list(args))
        get_settings.cache_clear()
        return result.exit_code, result.stdout, result.stderr

    yield invoke


def _one_line_error(stderr: str, *words: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], stderr


def test_help_and_unknown_choices(run: object) -> None:
    code, stdout, _ = run("--help")  # type: ignore[operator]
    assert code == 0 and "scan" in stdout
    for args in (
        ["matches", "list", "--format", "xml"],
        ["subjects", "list", "--format", "yaml"],
        ["matches", "list", "--status", "maybe"],
        ["hashes", "export", "--format", "json"],
        ["crawl", "reddit", "pics", "--listing", "best"],
        ["crawl", "civitai", "--period", "Decade"],
        ["crawl", "status", "--format", "xml"],
    ):
        code, _, stderr = run(*args)  # type: ignore[operator]
        assert code == 2, (args, stderr)


def test_scan_exit_codes(run: object, tmp_path: Path) -> None:
    good = images.write(tmp_path / "good" / "coffee.jpg", images.NO_FACE["coffee"]())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.jpg").write_bytes(b"not a picture")
    (tmp_path / "bad" / "empty.png").write_bytes(b"")
    code, stdout, _ = run("scan", "--json", str(good.parent))  # type: ignore[operator]
    assert code == 0 and json.loads(stdout)["analyzed"] == 1
    code, stdout, _ = run("scan", "--json", str(tmp_path / "bad"))  # type: ignore[operator]
    assert code == 1 and len(json.loads(stdout)["errors"]) == 2  # every target failed: not 0
    code, _, stderr = run("scan", str(tmp_path / "nowhere"))  # type: ignore[operator]
    assert code == 2
    _one_line_error(stderr, "nowhere")


def test_banks_must_exist_unless_created(run: object, tmp_path: Path) -> None:
    picture = images.write(tmp_path / "p.png", images.NO_FACE["chelsea"](), "PNG")
    code, _, stderr = run("hashes", "add", "--bank", "nciii", str(picture))  # type: ignore[operator]
    assert code == 2
    _one_line_error(stderr, "nciii", "--create-bank")
    code, stdout, _ = run("hashes", "list")  # type: ignore[operator]
    assert "nciii" not in stdout  # the typo made no bank
    code, _, _ = run("hashes", "add", "--bank", "ncii", "--create-bank", str(picture))  # type: ignore[operator]
    assert code == 0
    code, _, _ = run("hashes", "add", str(picture))  # type: ignore[operator]
    assert code == 0  # the default bank needs no flag


def test_mutually_exclusive_and_missing_choices(run: object) -> None:
    for args in (
        ["hashes", "withdraw", "1", "--submission", "s"],
        ["hashes", "withdraw"],
        ["crawl", "deviantart", "--query", "a", "--tag", "b"],
        ["crawl", "deviantart"],
        ["crawl", "civitai", "--tag", "x"],
        ["crawl", "reddit", "pics", "--period", "week"],
    ):
        code, _, stderr = run(*args)  # type: ignore[operator]
        assert code == 2, (args, stderr)
        _one_line_error(stderr)


def test_user_errors_are_one_line(run: object, tmp_path: Path) -> None:
    code, _, stderr = run("report", "--out", str(tmp_path / "no" / "such" / "report.html"))  # type: ignore[operator]
    assert code == 2
    _one_line_error(stderr, "no such folder")
    code, _, stderr = run("subjects", "remove", "999")  # type: ignore[operator]
    assert code == 2
    _one_line_error(stderr, "999")


def test_configuration_errors_are_caught_at_start(run: object, tmp_path: Path) -> None:
    images.write(tmp_path / "in" / "coffee.jpg", images.NO_FACE["coffee"]())
    for env in (
        {"LIKENESS_ANALYZERS": '["prefilter", "pdq", "facez"]'},
        {"LIKENESS_FACES__ENGINE": "dlibb"},
        {"LIKENESS_NSFW__ENGINE": "nope"},
        {"LIKENESS_RUNTIME__DEVICE": "tpu"},
        {"LIKENESS_SECRET_KEY": "not-a-fernet-key"},
    ):
        code, stdout, stderr = run("scan", str(tmp_path / "in"), **env)  # type: ignore[operator]
        assert code == 3, (env, stdout, stderr)
        _one_line_error(stderr)
        assert "worker_crashed" not in stdout
