"""edge_vision: an ament_python package that is also a plain pip-installable Python distribution."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "edge_vision"


def share(folder: str, pattern: str = "*") -> tuple[str, list[str]]:
    return (f"share/{PACKAGE}/{folder}", sorted(str(p) for p in Path(folder).glob(pattern) if p.is_file()))


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Real-time video AI at the edge as ROS 2 nodes: capture, detect, track, events.",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src", include=[PACKAGE, f"{PACKAGE}.*"]),
    include_package_data=True,
    package_data={PACKAGE: ["py.typed"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        share("launch", "*.launch.py"),
        share("config", "*.yaml"),
        share("config", "*.xml"),
        share("config", "*.rviz"),
        share("config", "*.json"),
        share("models"),
        share("data"),
    ],
    install_requires=[
        "numpy", "pyyaml", "av", "onnxruntime", "opencv-python-headless", "scipy", "rosbags", "foxglove-sdk",
        "prometheus-client", "psutil",
    ],
    extras_require={
        "openvino": ["openvino>=2025.0"],
        "quantize": ["onnx>=1.16"],
        # TensorRT 10+ with device memory through cuda-python and GPU pre-processing through CuPy (CUDA 12 builds).
        "tensorrt": ["tensorrt-cu12>=10", "cuda-python>=12", "cupy-cuda12x>=13", "onnx>=1.16"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "edge-vision = edge_vision.cli:main",
            # ROS executables (`ros2 run edge_vision <name>`): one per stage, plus the composed container.
            "camera_node = edge_vision.ros.nodes.camera:main",
            "detector_node = edge_vision.ros.nodes.detector:main",
            "tracker_node = edge_vision.ros.nodes.tracker:main",
            "events_node = edge_vision.ros.nodes.events:main",
            "visualizer_node = edge_vision.ros.nodes.visualizer:main",
            "pipeline_container = edge_vision.ros.container:main",
        ],
        "edge_vision.sources": [
            "file = edge_vision.core.sources.file:FileSource",
            "stream = edge_vision.core.sources.stream:StreamSource",
            "v4l2 = edge_vision.core.sources.v4l2:V4L2Source",
        ],
        "edge_vision.backends": [
            "onnxruntime = edge_vision.core.detection.onnxruntime_backend:OnnxRuntimeBackend",
            "openvino = edge_vision.core.detection.openvino_backend:OpenVinoBackend",
            "tensorrt = edge_vision.core.detection.tensorrt_backend:TensorRtBackend",
        ],
        "edge_vision.model_adapters": [
            "yolox = edge_vision.core.detection.adapters:YoloxAdapter",
            "ultralytics = edge_vision.core.detection.adapters:UltralyticsAdapter",
            "end2end = edge_vision.core.detection.adapters:EndToEndAdapter",
            "rtdetr = edge_vision.core.detection.adapters:RtDetrAdapter",
        ],
        "edge_vision.trackers": [
            "bytetrack = edge_vision.core.tracking.bytetrack:ByteTrack",
        ],
        "edge_vision.rules": [
            "zone = edge_vision.core.rules.zone:PolygonZoneRule",
            "line = edge_vision.core.rules.line:LineCrossingRule",
            "dwell = edge_vision.core.rules.dwell:DwellRule",
        ],
        "edge_vision.actions": [
            "jsonl = edge_vision.core.actions.jsonl:JsonlEventLog",
        ],
    },
)
