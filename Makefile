# The two commands a newcomer needs: `make demo` and `make test`.
# Each creates the virtual environment it needs in .venv (Python >= 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck bench faces-eval-data clean constraints

$(STAMP): pyproject.toml constraints.txt
	@echo "installing storelens and its dependencies into $(VENV) (the first time takes a few minutes)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

constraints: $(STAMP)  ## re-pin constraints.txt to what .venv holds (after a dependency change)
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

demo: $(STAMP)  ## simulate a sample café's week (and till history), then serve it live
	$(BIN)/storelens demo

test: lint typecheck $(STAMP)  ## lint, type-check and run the whole test suite
	$(BIN)/pytest -n auto --dist worksteal  # an idle worker takes queued tests from a busy one

lint: $(STAMP)  ## ruff, and the import contracts in pyproject.toml (layering, no cycles)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)  ## reproducible benchmarks; results land in benchmarks/results/
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/ops_stream.py
	$(BIN)/python benchmarks/ops_chain.py
	$(BIN)/python benchmarks/identity.py
	$(BIN)/python benchmarks/identity_incremental.py
	$(BIN)/python benchmarks/vision.py
	$(BIN)/python benchmarks/clv.py
	$(BIN)/python benchmarks/api_fuzz.py
	$(BIN)/python benchmarks/exports.py
	$(BIN)/python benchmarks/recognition.py

# Labelled faces for benchmarks/recognition_accuracy.py: the test photos that ship in the
# face_recognition sdist on PyPI (Obama x3, Biden; MIT), unpacked, never committed.
FACES_DIR := .cache/faces
faces-eval-data: $(STAMP)
	mkdir -p $(FACES_DIR)
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: face_recognition==1.3.0 -d $(FACES_DIR)
	tar -xzf $(FACES_DIR)/face_recognition-1.3.0.tar.gz -C $(FACES_DIR) --strip-components=3 \
		--wildcards 'face_recognition-1.3.0/tests/test_images/*.jpg'

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache
