# `make run`: set up, then the whole job on the built-in data. `make test`: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ROWS ?= 200000
SEED ?= 42
# Named by its rows and seed (config.built_in_data_path), so ROWS=N always means N rows.
BUILT_IN := data/train-$(ROWS)rows-seed$(SEED).parquet
# DATA=path/to/train.csv trains on your file instead (make only makes the built-in one).
DATA ?= $(BUILT_IN)
# The tiers that start a real component, and the long in-process tests (pyproject.toml's
# markers); `make test-fast` runs the rest.
NOT_FAST := server or postgres or browser or image or notebook or bench or system or slow

.PHONY: setup system run data train serve app test test-fast bench screenshot clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed

# Debian packages the tests need (postgresql, chromium, wrk, h2load, kubectl, docker, nginx):
# installs what is missing, as root or through sudo. `make run` needs none of them.
system:
	@bash scripts/system-packages.sh

$(BUILT_IN): | setup
	$(PY) -m santander make-data --rows $(ROWS) --seed $(SEED) --out $@

data: $(DATA)

train: setup $(DATA)
	$(PY) -m santander train --data $(DATA)

# Set-up, data, selection and export, then a server asked once; ends with where the time went.
run:
	@VENV=$(VENV) DATA=$(DATA) MAKE="$(MAKE)" bash scripts/run.sh

serve: setup
	$(PY) -m santander serve

app: setup
	$(PY) -m santander app

# The README's picture of the app: a server and the app on deploy/ (trained first if it has
# no version), the prefilled row scored in headless Chromium (Debian's chromium package).
screenshot: setup
	@ls deploy/models/xgboost-model/*/model-settings.json >/dev/null 2>&1 || $(MAKE) train
	$(PY) -m santander.app.browser --repository deploy --out docs/app.png

test: setup system
	$(PY) -m pytest

# In-process tests only: no server, no database server, no browser, no image.
test-fast: setup
	$(PY) -m pytest -n 2 -m "not ($(NOT_FAST))"

bench: setup system
	$(PY) -m bench.serving
	$(PY) -m bench.sustained
	$(PY) -m bench.rollout
	$(PY) -m bench.fast_paths
	$(PY) -m bench.selection
	$(PY) -m bench.quality --reference
	$(PY) -m bench.soak

clean:
	rm -rf reports deploy/reports deploy/models .envs .metrics .app-screenshot
