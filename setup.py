"""Packaging beyond pyproject.toml: the bundle files ship inside the package.

``bundles/`` stays at the repository root (``python -m monai.bundle run --config_file
bundles/masksup/train.json`` is the users' command) and is installed as ``medseg_masksup/bundles``.
pyproject.toml cannot combine automatic package discovery with a ``package-dir`` entry for one
package, hence this file; package data patterns are in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["medseg_masksup*", "data_scripts*"]), "medseg_masksup.bundles"],
    package_dir={"medseg_masksup.bundles": "bundles"},
)
