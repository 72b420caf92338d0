"""The package list, discovered: every package under reportgen/ (a new subpackage is never
left out of a wheel), plus the templates and configs that pyproject.toml maps into it."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["reportgen", "reportgen.*"]),
                "reportgen.templates", "reportgen.configs"])
