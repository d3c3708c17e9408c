# Two entry points a seller needs: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/syncd demo

test: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/mypy syncd
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check syncd tests bench
	$(BIN)/mypy syncd

bench: $(STAMP)
	$(BIN)/python bench/writer.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
