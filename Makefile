# Every target bootstraps .venv on a fresh machine (Python >= 3.11, package registries only).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
WORKSPACE ?= demo-engagement
CUSTOMERS ?= 10000
SEED ?= 20221231
LANGUAGE ?= zh

.PHONY: venv demo test bench lab playbook clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/playbook demo $(WORKSPACE) --customers $(CUSTOMERS) --seed $(SEED) --language $(LANGUAGE)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(PY) -m analysis.bench --out bench/results.json

lab: $(STAMP)
	$(PY) -m pip install --quiet -e '.[lab]'
	$(VENV)/bin/jupyter lab --notebook-dir=.

playbook: $(STAMP)
	$(PY) -m analysis.book --out build/playbook

clean:
	rm -rf $(VENV) build .pytest_cache
