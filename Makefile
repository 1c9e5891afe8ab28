# Two commands on a fresh machine:  make demo  (set up + track the sample video)  and  make test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast demo clean

setup: $(STAMP)

# Creates the virtualenv if needed, installs the pinned environment and the package (editable).
$(STAMP): requirements.txt setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# pytest exits 5 when it collects no test: make treats that as a failure, as it should.
test: setup
	$(PY) -m pytest

# Day-to-day subset (a couple of minutes): everything but the tests marked slow (whole trainings, tool
# end-to-end runs, demo quality, export). Exit code 5 (nothing collected) fails here too.
test-fast: setup
	$(PY) -m pytest -m "not slow"

# Tracks the shipped sample clip with the shipped demo model (trained here on synthetic shapes only).
demo: setup
	$(PY) tools/track_video.py --input assets/sample.mp4 --output outputs/demo --trails

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
