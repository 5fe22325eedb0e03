"""Packaging glue that pyproject.toml cannot express: the worked examples a learner opens live in
the repository's top-level ``examples/`` folder and are installed as ``chainrule.examples`` (one
copy of each example: ``python examples/apple.py`` and ``chainrule demo apple`` run the same code).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "chainrule.examples"],
    package_dir={"": "src", "chainrule.examples": "examples"},
)
