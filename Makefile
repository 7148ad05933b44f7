# `make demo` and `make test` work on a fresh machine: they build .venv and install everything first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The pip ROS wheels leave AMENT_PREFIX_PATH unset; point it at the venv so the share/ dir resolves.
export AMENT_PREFIX_PATH := $(abspath $(VENV))
export PYTHONUNBUFFERED := 1

.PHONY: venv test test-long demo bench lint clean

venv: $(STAMP)

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q -r requirements.txt 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install -q --no-deps --no-build-isolation --config-settings editable_mode=compat -e . 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import torch, numba, rclpy, gssplat_ros" 
	touch $(STAMP)

# `long` tests (minute-long soaks: a looped bag for minutes, 30 Hz for 60 s) run only in test-long.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not long" tests

test-long: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m long tests

demo: $(STAMP)
	$(PY) -m gssplat_ros.demo --out demo_out

bench: $(STAMP)
	$(VENV)/bin/gssplat bench render

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) demo_out build *.egg-info
