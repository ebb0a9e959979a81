# recdb developer entry points. `make demo` and `make test` work on a fresh machine:
# they create .venv, install the CPU torch pin first (so nothing pulls a CUDA build),
# then recdb with its extras, and MovieLens-100K via recbole's wheel (--no-deps).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0

.PHONY: setup demo test lint eval bench bench-scale clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps recbole==1.2.1
	touch $@

demo: setup
	$(VENV)/bin/recdb demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check recdb migrations tests scripts

eval: setup  # the run the README's Quality tables come from (commit docs/eval.json too)
	$(VENV)/bin/recdb eval --fresh 3 --sequence-seeds 3 --json docs/eval.json --plot eval.png
	$(VENV)/bin/python scripts/readme_figures.py eval.json

bench: setup  # a full run, then the README's tables from it (commit both)
	$(VENV)/bin/recdb bench --json docs/bench.json
	$(VENV)/bin/python scripts/readme_figures.py bench.json

bench-scale: setup  # the scale steps, then the README's scale table and plot from them
	$(VENV)/bin/recdb bench --scale --json docs/bench_scale.json --plot docs/bench_scale.png
	$(VENV)/bin/python scripts/readme_figures.py bench_scale.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
