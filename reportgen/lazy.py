"""Names of a package that import their module on first use (PEP 562), so that importing the
package stays cheap: ``reportgen.model`` and ``reportgen.pipeline.stages`` load TensorFlow
only when a name that needs it is read."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: a name of ``homes`` ({name: submodule})
    imports ``package.submodule`` on first use and is kept on the package after it; any
    other name raises AttributeError as a module would."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
