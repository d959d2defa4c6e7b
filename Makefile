# Two commands do all set-up on a fresh machine with python3 and make:
#   make demo   the main job: train a character-level language model of first names, sample, score
#   make test   the test suite (what .ci/run calls)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo tour test bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,triton]'  # Triton (about 290 MB) only for the tests
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/rnnkit demo

tour: $(STAMP)
	$(BIN)/rnnkit tour

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/core_speed.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
