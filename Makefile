# `make run`: set up, then the whole job on the built-in data. `make test`: the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= data/train.parquet
ROWS ?= 200000

.PHONY: setup run data train serve app test bench screenshot clean

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

app: setup
	$(PY) -m santander app

# The README's picture of the app: a server and the app on deploy/ (trained first if it has
# no version), the prefilled row scored in headless Chromium (Debian's chromium package).
screenshot: setup
	@ls deploy/models/xgboost-model/*/model-settings.json >/dev/null 2>&1 || $(MAKE) train
	$(PY) -m santander.app.browser --repository deploy --out docs/app.png

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m bench.serving
	$(PY) -m bench.selection
	$(PY) -m bench.quality --reference
	$(PY) -m bench.soak

clean:
	rm -rf reports deploy/reports deploy/models .envs .metrics .app-screenshot
