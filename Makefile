# Two commands set up everything: `make demo` and `make test` (see README.md).
VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
SAMPLE  := examples/grocery
# Tests and the demo never reach a model hub: all weights are local.
export HF_HUB_OFFLINE := 1

.PHONY: install demo test lint bench clean

# requirements.lock holds every runtime pin, shared with the Modal image; torch/torchvision are
# the pair our machines carry locally (DEVELOPERS.md). Installed first, so the package keeps them.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
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
	$(BIN)/ruff check imagematch index_builder tests bench modal_app.py modal_ops.py
	$(BIN)/ruff format --check imagematch index_builder tests bench modal_app.py modal_ops.py
	$(BIN)/mypy

# Every script in bench/ (each bounded in time, 127.0.0.1 only), each rewriting its own section of
# BENCHMARKS.md. BENCH_QUICK=1: smaller sizes, for development; BENCH_SHARED=1 notes a shared machine.
BENCH_SCRIPTS := webhook_burst pipeline_throughput serve_startup incremental_rebuild search_latency \
	ledger_scale capacity live_update ann_recall quality photo_quality
bench: install
	@for s in $(BENCH_SCRIPTS); do \
		echo "== bench/$$s.py"; \
		PYTHONPATH=$(CURDIR) nice -n 5 timeout 1800 $(PY) bench/$$s.py || exit 1; \
	done

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache
