# syntax=docker/dockerfile:1
# edge_vision on an NVIDIA Jetson: an L4T (JetPack) base image, ROS 2 from packages.ros.org (the ROS 2 PyPI wheels
# are x86_64 only), this package built with colcon as on any ROS install (README: "On a ROS 2 Jazzy or Kilted
# install"), Python dependencies in a venv that also sees the system's ROS and TensorRT Python packages.
#
# L4T_IMAGE: the l4t-jetpack (or l4t-base) image of the JetPack release on the device, on Ubuntu 24.04 (JetPack 7):
# ROS 2 Kilted and Jazzy have arm64 packages for 24.04 only (a 22.04 JetPack 6 image offers Humble, which this
# package does not target). On the Jetson, from the repository root:
#
#   docker build -f docker/jetson.Dockerfile --build-arg L4T_IMAGE=nvcr.io/nvidia/l4t-jetpack:<r38.x tag> \
#       -t edge-vision:jetson .
#   docker run -d --runtime nvidia --name edge-vision --restart on-failure:5 --stop-timeout 30 --ipc host \
#       -p 127.0.0.1:9100:9100 -v edge-vision-data:/data --device /dev/video0 \
#       -v /etc/edge-vision/pipeline.yaml:/etc/edge-vision/pipeline.yaml:ro edge-vision:jetson
#
# The thermal guard reads /sys/class/thermal (visible in the container) and tegrastats where the image has it.
ARG L4T_IMAGE
ARG ROS_DISTRO=kilted

FROM ${L4T_IMAGE}
ARG ROS_DISTRO
ENV ROS_DISTRO=${ROS_DISTRO} \
    DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ROS 2 from its apt repository (key and source as ROS 2's installation guide gives them).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && curl -fsSL https://raw.githubusercontent.com/ros/rosdistro/master/ros.key \
        -o /usr/share/keyrings/ros-archive-keyring.gpg \
    && echo "deb [arch=$(dpkg --print-architecture) signed-by=/usr/share/keyrings/ros-archive-keyring.gpg]" \
        "http://packages.ros.org/ros2/ubuntu $(. /etc/os-release && echo "$UBUNTU_CODENAME") main" \
        > /etc/apt/sources.list.d/ros2.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        "ros-${ROS_DISTRO}-ros-base" "ros-${ROS_DISTRO}-vision-msgs" "ros-${ROS_DISTRO}-diagnostic-msgs" \
        python3-colcon-common-extensions python3-venv python3-dev cmake g++ make \
        python3-numpy python3-yaml python3-scipy python3-opencv python3-psutil \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --no-create-home --groups video edge \
    && mkdir -p /data /opt/edge_vision/src/edge_vision \
    && chown edge:edge /data
WORKDIR /opt/edge_vision
COPY requirements-ros.txt setup.py setup.cfg pyproject.toml package.xml src/edge_vision/
COPY resource/ src/edge_vision/resource/
COPY src/ src/edge_vision/src/
COPY config/ src/edge_vision/config/
COPY launch/ src/edge_vision/launch/
COPY models/ src/edge_vision/models/
COPY data/ src/edge_vision/data/
COPY docker/container.yaml /opt/edge_vision/container.yaml
COPY docker/ros_entrypoint.sh /opt/edge_vision/ros_entrypoint.sh
COPY config/pipeline.yaml /etc/edge-vision/pipeline.yaml
# --system-site-packages: the venv sees rclpy (ROS) and tensorrt (JetPack) from the system's Python.
RUN python3 -m venv --system-site-packages /opt/edge_vision/venv \
    && . /opt/edge_vision/venv/bin/activate \
    && pip install -r src/edge_vision/requirements-ros.txt \
    && . "/opt/ros/${ROS_DISTRO}/setup.bash" \
    && colcon build --base-paths src/edge_vision src/edge_vision/src \
        --build-base /tmp/colcon-build --install-base /opt/edge_vision/install --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf /tmp/colcon-build log
ENV PATH=/opt/edge_vision/venv/bin:$PATH \
    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
    PYTHONUNBUFFERED=1 \
    HOME=/data
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 9100
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4)"]
ENTRYPOINT ["/opt/edge_vision/ros_entrypoint.sh", "edge-vision"]
CMD ["run", "/etc/edge-vision/pipeline.yaml", "/opt/edge_vision/container.yaml", "--output-dir", "/data/out"]
