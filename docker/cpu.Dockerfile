# syntax=docker/dockerfile:1
# edge_vision on a CPU (x86_64): Debian 12 with Python 3.11, set up by scripts/setup.sh like a developer's
# machine (ROS 2 Kilted from its PyPI wheels: CPython 3.11 on x86_64 only), then copied into a slim image
# without compilers. From the repository root:
#
#   docker build -f docker/cpu.Dockerfile -t edge-vision:cpu .
#   docker run -d --name edge-vision --restart on-failure:5 --stop-timeout 30 --shm-size 256m \
#       -p 127.0.0.1:9100:9100 -v edge-vision-data:/data --env-file /etc/edge-vision/secrets.env \
#       -v /etc/edge-vision/pipeline.yaml:/etc/edge-vision/pipeline.yaml:ro edge-vision:cpu
#
# /etc/edge-vision/pipeline.yaml is the config (the image holds a copy of config/pipeline.yaml there: the bundled
# demo, vtest.avi once, then exit 0); docker/container.yaml is merged over it (metrics on :9100 for HEALTHCHECK).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# cmake and a C++ compiler build the message packages (edge_vision_msgs, vision_msgs) into the venv.
# Debian's versions are not pinned (DL3008): bookworm's stable updates are security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake g++ make \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --create-home --uid 10001 edge
WORKDIR /opt/edge_vision
COPY requirements.txt setup.py setup.cfg pyproject.toml package.xml ./
COPY resource/ resource/
COPY scripts/ scripts/
COPY compat/ compat/
COPY src/ src/
COPY config/ config/
COPY launch/ launch/
COPY models/ models/
COPY data/ data/
COPY docker/container.yaml docker/container.yaml
RUN chown -R edge:edge /opt/edge_vision
# As a user: setup.sh then leaves the Debian packages of the capture tests alone (it installs them as root).
USER 10001:10001
ENV PIP_NO_CACHE_DIR=1
RUN bash scripts/setup.sh && rm -rf build

FROM ${PYTHON_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --no-create-home edge \
    && mkdir -p /data \
    && chown edge:edge /data
COPY --from=build /opt/edge_vision /opt/edge_vision
COPY config/pipeline.yaml /etc/edge-vision/pipeline.yaml
# What scripts/env.sh sets: the venv, localhost-only discovery, Fast DDS with the shared-memory profile.
ENV PATH=/opt/edge_vision/.venv/bin:$PATH \
    VIRTUAL_ENV=/opt/edge_vision/.venv \
    AMENT_PREFIX_PATH=/opt/edge_vision/.venv \
    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
    RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
    FASTDDS_DEFAULT_PROFILES_FILE=/opt/edge_vision/config/fastdds_shm.xml \
    PYTHONUNBUFFERED=1 \
    HOME=/data
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 9100
# SIGTERM drains the pipeline and finishes the video and summary (pipeline.stop_timeout_s, 10 s): give docker
# stop more than that (--stop-timeout 30).
STOPSIGNAL SIGTERM
# /healthz: 200 while OK or WARN, 503 on ERROR (a failed source, a stuck stage, the memory ceiling).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4)"]
ENTRYPOINT ["edge-vision"]
CMD ["run", "/etc/edge-vision/pipeline.yaml", "/opt/edge_vision/docker/container.yaml", "--output-dir", "/data/out"]
