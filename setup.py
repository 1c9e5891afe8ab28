"""QueryInst-VIS: the three code folders install as one package, ``queryinst``.

``image/`` -> ``queryinst.image``, ``vis/`` -> ``queryinst.vis``, ``tracking/`` -> ``queryinst.tracking``.
"""
from setuptools import setup

SUBPACKAGES = {
    "queryinst.image": "image",
    "queryinst.image.data": "image/data",
    "queryinst.image.eval": "image/eval",
    "queryinst.vis": "vis",
    "queryinst.vis.data": "vis/data",
    "queryinst.vis.eval": "vis/eval",
    "queryinst.tracking": "tracking",
}

setup(
    name="queryinst-vis",
    version="0.1.0",
    description="QueryInst and QueryInst-VIS: query-based instance segmentation for images and videos",
    python_requires=">=3.10",
    packages=["queryinst", *SUBPACKAGES],
    package_dir={"queryinst": "queryinst", **SUBPACKAGES},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy>=1.24",
        "scipy>=1.10",
        "pycocotools>=2.0.6",
        "opencv-python-headless>=4.7",
        "tqdm>=4.60",
        "PyYAML>=6.0",
        "av>=12",  # H.264 MP4 output (vis/h264.py); without it OpenCV writes mp4v
    ],
    extras_require={"decord": ["decord>=0.6"], "test": ["pytest>=7"]},
)
