# The two commands of the README: `make run` (the demo on the embedded database) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The vpdq extra (Meta's reference, for a compatibility test) builds only where FFmpeg's headers are installed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	if pkg-config --exists libavformat libavcodec libswscale libavdevice 2>/dev/null; then \
		$(BIN)/python -m pip install --quiet -e '.[dev,vpdq]'; fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/likeness demo --workdir demo-out

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	# --no-deps: face_recognition would build dlib from source; dlib-bin already provides the module
	$(BIN)/python -m pip install --quiet --no-deps face_recognition==1.3.0
	$(BIN)/python -m pip install --quiet faiss-cpu locust
	$(BIN)/python bench/run_all.py

# Every page of the web UI to docs/ui/*.png (the system's Chromium: apt-get install chromium).
screenshots: $(STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) demo-out build .pytest_cache .mypy_cache .ruff_cache
