# syntax=docker/dockerfile:1
# edge_vision on an NVIDIA GPU (x86_64): CUDA + cuDNN runtime from NVIDIA's image, Python 3.11 (the ROS 2 Kilted
# wheels are CPython 3.11), scripts/setup.sh, then ONNX Runtime's GPU build and the TensorRT backend
# (pip install -e .[tensorrt]: TensorRT 10, cuda-python, CuPy). From the repository root:
#
#   docker build -f docker/cuda.Dockerfile -t edge-vision:cuda .
#   docker run -d --gpus all --name edge-vision --restart on-failure:5 --stop-timeout 30 --shm-size 256m \
#       -p 127.0.0.1:9100:9100 -v edge-vision-data:/data -v edge-vision-engines:/data/.cache \
#       -v /etc/edge-vision/pipeline.yaml:/etc/edge-vision/pipeline.yaml:ro edge-vision:cuda
#
# Needs the NVIDIA Container Toolkit on the host. Set detector.backend: tensorrt (or onnxruntime with
# providers: [cuda]) in the mounted config; TensorRT engines are cached under /data/.cache (keep it on a volume:
# the first start builds them, minutes). ORT_GPU must match the image's CUDA major version (ONNX Runtime's
# CUDA execution provider requirements table).
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04
ARG ORT_GPU=onnxruntime-gpu

FROM ${CUDA_IMAGE} AS base
# Ubuntu 22.04 ships Python 3.11 in its universe component.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --no-create-home edge \
    && mkdir -p /data /opt/edge_vision \
    && chown edge:edge /data /opt/edge_vision

FROM base AS build
ARG ORT_GPU
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11-dev cmake g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/edge_vision
COPY --chown=10001:10001 requirements.txt setup.py setup.cfg pyproject.toml package.xml ./
COPY --chown=10001:10001 resource/ resource/
COPY --chown=10001:10001 scripts/ scripts/
COPY --chown=10001:10001 compat/ compat/
COPY --chown=10001:10001 src/ src/
COPY --chown=10001:10001 config/ config/
COPY --chown=10001:10001 launch/ launch/
COPY --chown=10001:10001 models/ models/
COPY --chown=10001:10001 data/ data/
COPY --chown=10001:10001 docker/container.yaml docker/container.yaml
USER 10001:10001
ENV PIP_NO_CACHE_DIR=1
# One onnxruntime module: the GPU build replaces the CPU wheel that requirements.txt installs.
RUN PYTHON=python3.11 bash scripts/setup.sh \
    && .venv/bin/pip uninstall -y onnxruntime \
    && .venv/bin/pip install "${ORT_GPU}" \
    && .venv/bin/pip install --no-build-isolation -e ".[tensorrt]" \
    && rm -rf build

FROM base
COPY --from=build /opt/edge_vision /opt/edge_vision
COPY config/pipeline.yaml /etc/edge-vision/pipeline.yaml
ENV PATH=/opt/edge_vision/.venv/bin:$PATH \
    VIRTUAL_ENV=/opt/edge_vision/.venv \
    AMENT_PREFIX_PATH=/opt/edge_vision/.venv \
    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
    RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
    FASTDDS_DEFAULT_PROFILES_FILE=/opt/edge_vision/config/fastdds_shm.xml \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video \
    PYTHONUNBUFFERED=1 \
    HOME=/data
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 9100
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4)"]
ENTRYPOINT ["edge-vision"]
CMD ["run", "/etc/edge-vision/pipeline.yaml", "/opt/edge_vision/docker/container.yaml", "--output-dir", "/data/out"]
