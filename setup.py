"""QueryInst-VIS: the three code folders install as one package, ``queryinst``.

``image/`` -> ``queryinst.image``, ``vis/`` -> ``queryinst.vis``, ``tracking/`` -> ``queryinst.tracking``, and
each of their subfolders with an ``__init__.py`` (``vis/modeling/`` -> ``queryinst.vis.modeling``, ...).
"""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def _subpackages() -> dict[str, str]:
    """Every folder with an ``__init__.py`` under the three code folders, as installed name -> folder."""
    found = {}
    for folder, name in (("image", "queryinst.image"), ("vis", "queryinst.vis"), ("tracking", "queryinst.tracking")):
        for init in sorted(Path(HERE, folder).rglob("__init__.py")):
            rel = init.parent.relative_to(HERE).as_posix()
            found[".".join([name, *init.parent.relative_to(Path(HERE, folder)).parts])] = rel
    return found


SUBPACKAGES = _subpackages()  # {"queryinst.vis.modeling": "vis/modeling", ...}

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
