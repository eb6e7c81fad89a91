# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create .venv on first use and install exactly what pyproject.toml pins.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= mini

.PHONY: rehearsal setup notebooks book test test-notebooks smoke-notebooks notebook-sources benchmarks clean lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[book,test,minizoo,cluster,timm]'
	touch $(STAMP)

setup: $(STAMP)

# Execute the Q1-Q3 notebooks (skips those whose inputs did not change), then render the book.
notebooks: $(STAMP)
	$(BIN)/medssl notebooks --profile $(PROFILE) --out book/generated

book: notebooks
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "open _build/html/index.html"

# Unit tests plus the nbval regression of the committed smoke-profile notebooks, in one pytest run.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest tests --nbval-lax --nbval-sanitize-with tests/notebooks/sanitize.cfg -q --durations=15

# Rewrite notebooks/ from their builders in tools/ (the source of truth; a test checks they agree).
notebook-sources: $(STAMP)
	cd tools && for b in build_*.py; do ../$(BIN)/python $$b || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

# Regenerate the committed smoke notebooks after a deliberate change of results.
smoke-notebooks: $(STAMP)
	$(BIN)/medssl notebooks --profile smoke --out tests/notebooks --suffix _smoke --force

# The paper profile end to end on fabricated data and random checkpoints (13 models x 8 datasets), book included.
rehearsal: $(STAMP)
	$(BIN)/medssl rehearse --out _rehearsal

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf _build book/generated results .cache
