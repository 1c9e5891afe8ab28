"""QueryInst-VIS installs as one package, ``queryinst``, from the repository's folders (docs/design.md#module-map).

The metadata (name, version, dependencies, extras, the ``queryinst`` console script) is in pyproject.toml;
this file only maps the folders onto package names, so that the repository keeps its layout:

- code: ``image/`` -> ``queryinst.image``, ``vis/`` -> ``queryinst.vis``, ``tracking/`` -> ``queryinst.tracking``,
  and each of their subfolders with an ``__init__.py`` (``vis/modeling/`` -> ``queryinst.vis.modeling``, ...);
  ``tools/`` -> ``queryinst.tools`` (the command-line tools, run by ``queryinst <subcommand>``);
- data: ``configs/`` -> ``queryinst.configs`` (every YAML config), ``models/`` -> ``queryinst.models`` (the demo
  model, ``models/demo/*.pth`` only), ``assets/`` -> ``queryinst.assets`` (the sample clip), and
  ``queryinst/weights.yaml`` (the registry of weights by name, queryinst/weights.py). Each of these
  folders has an empty ``__init__.py`` so that ``importlib.resources.files("queryinst.configs")`` finds it
  in an installed wheel and in the editable install alike (``queryinst/resources.py``).
"""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent

CODE = (("image", "queryinst.image"), ("vis", "queryinst.vis"), ("tracking", "queryinst.tracking"),
        ("tools", "queryinst.tools"))
# Data packages: folder, package name, the files shipped (globs relative to the folder).
DATA = (("configs", "queryinst.configs", ["*/*.yaml"]),
        ("models", "queryinst.models", ["demo/*.pth"]),
        ("assets", "queryinst.assets", ["*.mp4"]))


def _subpackages() -> dict[str, str]:
    """Every folder with an ``__init__.py`` under the code folders, as installed name -> folder."""
    found = {}
    for folder, name in CODE:
        for init in sorted(Path(HERE, folder).rglob("__init__.py")):
            rel = init.parent.relative_to(HERE).as_posix()
            found[".".join([name, *init.parent.relative_to(Path(HERE, folder)).parts])] = rel
    return found


SUBPACKAGES = _subpackages()  # {"queryinst.vis.modeling": "vis/modeling", "queryinst.tools": "tools", ...}
DATA_PACKAGES = {name: folder for folder, name, _ in DATA}

setup(
    packages=["queryinst", *SUBPACKAGES, *DATA_PACKAGES],
    package_dir={"queryinst": "queryinst", **SUBPACKAGES, **DATA_PACKAGES},
    package_data={"queryinst": ["weights.yaml"], **{name: globs for _, name, globs in DATA}},  # + the weights registry
    include_package_data=False,  # exactly the globs above: no work_dirs/, no stray checkpoints
)
