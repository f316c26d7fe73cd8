# The two commands: `make run` opens the console, `make test` proves the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bytecode clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q engine console firehose_console
	touch $(STAMP)

# The bytecode of engine/ and console/, written as pip writes an installed wheel's: where
# PYTHONDONTWRITEBYTECODE is set, every start would compile them from source again (some 60 ms
# of CPU, 7 % of the console's launch; README: "Performance"). Quick when nothing changed.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q engine console firehose_console

run: bytecode
	$(BIN)/firehose-console $(ARGS)

# Lint, types, the import contracts (pyproject.toml), then every test, the wheel's included.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy engine console tests firehose_console
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Each script prints its figures and ratios with the load; together they take several minutes.
bench: bytecode
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/burst_engine.py
	$(BIN)/python bench/rate_accuracy.py
	$(BIN)/python bench/exactly_once.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/alert_storm.py
	$(BIN)/python bench/console_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
