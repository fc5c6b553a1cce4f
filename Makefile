# `make run`: set up, then the whole job on the built-in data. `make test`: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data/train.parquet
ROWS ?= 200000

.PHONY: setup run data train serve test bench clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

$(DATA): | setup
	$(PY) -m santander make-data --rows $(ROWS) --out $(DATA)

data: $(DATA)

train: setup $(DATA)
	$(PY) -m santander train --data $(DATA)

run: train
	$(PY) -m santander serve-and-ask

serve: setup
	$(PY) -m santander serve

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m bench.serving
	$(PY) -m bench.selection
	$(PY) -m bench.quality --reference
	$(PY) -m bench.soak

clean:
	rm -rf reports deploy/reports deploy/models .envs .metrics
