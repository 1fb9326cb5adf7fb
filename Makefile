# Two commands: `make demo` runs the main job, `make test` runs lint and the tests.
# Each creates .venv on first use and installs only what is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch must be installed before anything that depends on torch.
TORCH_PIN := torch==2.13.0

.PHONY: demo test lint bench results clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e ".[train,dev,render,compat]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m alpagym_train.demo

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/env_step.py --profile
	$(PY) benchmarks/env_scaling.py
	$(PY) benchmarks/env_memory.py

# BC, BC + GRPO, SB3 PPO and SAC at one env-step budget on the test suite (~10-15 min on 2 cores).
results: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/results.py $(RESULTS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
