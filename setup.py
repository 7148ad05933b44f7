"""gssplat_ros: works for colcon (ament_python) and for a plain `pip install`."""

from glob import glob

from setuptools import find_namespace_packages, setup

PACKAGE = "gssplat_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    # Namespace discovery so the data-only folders (assets/, assets/weights/) are packages too:
    # plain find_packages leaves them out and setuptools warns that their files would be dropped.
    # Only gssplat_ros is installed: the top-level export/ folder holds scripts, its code is gssplat_ros.export.
    packages=find_namespace_packages(include=[PACKAGE, f"{PACKAGE}.*"],
                                     exclude=["*.__pycache__", "*.__pycache__.*"]),
    package_data={f"{PACKAGE}.assets": ["*.tsv"], f"{PACKAGE}.assets.weights": ["*.json", "*.safetensors"]},
    include_package_data=True,
    data_files=[
        # ament index marker and package manifest: what `get_package_share_directory` looks for.
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.json")),
    ],
    install_requires=["numpy", "torch", "pyyaml", "safetensors", "pillow", "jaxtyping", "scipy", "opencv-python-headless"],
    extras_require={
        "cpu": ["numba"],
        "export": ["onnx", "onnxruntime", "onnxslim"],
        "bags": ["rosbags", "mcap"],
        "test": ["pytest", "pytest-timeout"],
    },
    zip_safe=True,
    maintainer="gssplat_ros developers",
    maintainer_email="gssplat-ros@example.org",
    description="Live semantic 3D Gaussian splatting (GSsplat) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "gssplat = gssplat_ros.cli:main",
            "gssplat_node = gssplat_ros.ros.node:main",
        ],
    },
)
