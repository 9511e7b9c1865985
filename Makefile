# The two commands a learner needs are `make lab` and `make test`.
# Both create .venv on first use and install the package with the pins in
# constraints.txt (the one pin set, shared with CI and binder/).

VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.mi-course-installed
PYTEST_ARGS ?=

.PHONY: lab test setup browser build bench bench-saelens clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	# torch first, pinned to the CPU wheel (PyTorch's own index; PyPI has no +cpu builds): an unpinned torch
	# pulls GBs of CUDA. --retries 1: where that index cannot be reached, pip must not wait on it five times.
	$(PIP) install --quiet --disable-pip-version-check --retries 1 --extra-index-url https://download.pytorch.org/whl/cpu \
		-c constraints.txt torch
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

# Debian's Chromium for the browser test (Playwright drives it through
# executable_path; Playwright's own browser download cannot work offline).
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not found: the browser test will be skipped (install Debian's chromium to run it)"; fi

lab: setup
	$(VENV)/bin/mi-course lab

build: setup
	$(VENV)/bin/mi-course build

test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/run.py

# Optional: our SAE trainer and SAELens-format files against the real sae-lens (not part of test or bench).
# sae-lens needs TransformerLens < 4, so it gets a venv of its own; torch is pinned to the CPU wheel first.
SAELENS_VENV    ?= benchmarks/.venv-saelens
SAELENS_VERSION := 6.54.12
SAELENS_STAMP   := $(SAELENS_VENV)/.sae-lens-$(SAELENS_VERSION)

$(SAELENS_STAMP):
	@test -x $(SAELENS_VENV)/bin/python || python3 -m venv $(SAELENS_VENV)
	$(SAELENS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(SAELENS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 sae-lens==$(SAELENS_VERSION)
	@touch $@

bench-saelens: setup $(SAELENS_STAMP)
	SAELENS_PYTHON=$(SAELENS_VENV)/bin/python $(PY) benchmarks/saelens_compare.py

clean-venv:
	rm -rf $(VENV)
