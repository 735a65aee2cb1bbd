# Two commands set up everything: `make demo` and `make test` (see README.md).
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
SAMPLE  := examples/grocery
# Tests and the demo never reach a model hub: all weights are local.
export HF_HUB_OFFLINE := 1

.PHONY: install demo test lint bench clean

# torch/torchvision are pinned to the pair our machines carry locally (DEVELOPERS.md); they are
# installed first so nothing else pulls a different build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/imagematch index build --catalog $(SAMPLE)/catalog/products.json
	$(BIN)/imagematch match $(SAMPLE)/queries/q-00000.jpg
	@echo "Console: http://127.0.0.1:8000/ui/jobs  (try a photo at http://127.0.0.1:8000/ui/try)"
	$(BIN)/imagematch serve --host 127.0.0.1 --port 8000

test: install
	$(PY) -m pytest

lint: install
	$(BIN)/ruff check imagematch index_builder tests bench modal_app.py
	$(BIN)/ruff format --check imagematch index_builder tests bench modal_app.py
	$(BIN)/mypy

bench: install
	$(PY) bench/quality.py
	$(PY) bench/live_update.py
	$(PY) bench/photo_quality.py

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache
