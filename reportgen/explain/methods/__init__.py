"""The registry of explanation methods: one module per method, one line per method below.

Each module declares ``SPEC``, a :class:`~reportgen.explain.methods.spec.MethodSpec`, and
imports TensorFlow only inside its ``run``, so this registry (labels, descriptions, options,
costs) is read by the config check, the pages and ``reportgen keys`` without TensorFlow. The
suite, the quality table, the sanity check, the Methods page, report.md and the benchmarks
iterate over :data:`REGISTRY` in its order.
"""

from __future__ import annotations

import dataclasses
import difflib
from importlib import import_module

import numpy as np

from reportgen.errors import ConfigError
from reportgen.explain.methods.spec import (OUTPUT_KINDS, Cost, MethodSpec, NoOptions, OptionCut,
                                            Reductions, Shape)

REGISTRY: dict[str, MethodSpec] = {spec.name: spec for spec in (
    import_module(f"{__name__}.{module}").SPEC for module in (
        "gradcam",
        "gradcam_plus_plus",
        "layercam",
        "scorecam",
        "saliency",
        "smoothgrad",
        "integrated_gradients",
        "guided_backprop",
        "deconvnet",
        "guided_gradcam",
        "occlusion",
        "rise",
    ))}


def get(name: str) -> MethodSpec:
    """The spec of method ``name``.

    Raises:
        ValueError: unknown method (the message names the closest one).
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}{_closest(name)}")
    return REGISTRY[name]


def _closest(name: str) -> str:
    match = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else f"; valid: {', '.join(REGISTRY)}"


def selected(names: list[str]) -> list[str]:
    """The methods ``explain.methods`` names (``["all"]``: every one, in registry order).

    Raises:
        ConfigError: an unknown name, naming the key and the closest valid name.
    """
    if list(names) == ["all"]:
        return list(REGISTRY)
    for n in names:
        if n not in REGISTRY:
            raise ConfigError(f"explain.methods: unknown method {n!r}{_closest(n)}")
    return list(dict.fromkeys(names))


def configure(cfg) -> dict[str, object]:
    """Check ``explain.methods`` and every ``[explain.<method>]`` table of ``cfg``; return
    {method: its options}, for the selected methods in order.

    Raises:
        ConfigError: an unknown method or key, or a bad value, naming the key
            (``explain.occlusion.patch_size``).
    """
    from reportgen.config import read_table

    tables = cfg.explain.method_options
    for name in tables:
        if name not in REGISTRY:
            raise ConfigError(f"unknown table [explain.{name}]: no such method or key"
                              f"{_closest(name)}")
    options = {name: read_table(f"explain.{name}", tables.get(name, {}), spec.options)
               for name, spec in REGISTRY.items()}
    return {name: options[name] for name in selected(cfg.explain.methods)}


def as_map(name: str, out: np.ndarray) -> np.ndarray:
    """Method ``name``'s raw output as (N, H, W) float32 maps in [0, 1], by its output kind:
    a "map" min-max scaled per image (a constant map gives zeros); "attribution" and "signed"
    outputs as their largest absolute value over the channels divided by the per-image
    maximum (0 stays 0). Deletion/insertion, pointing game and energy in box score these."""
    if get(name).output == "map":
        m = np.asarray(out, np.float32)
        flat = m.reshape(len(m), -1)
        lo = flat.min(axis=1)[:, None, None]
        span = np.ptp(flat, axis=1)[:, None, None]
        return np.divide(m - lo, span, out=np.zeros_like(m), where=span > 1e-8)
    m = np.abs(np.asarray(out, np.float32)).max(axis=-1)
    top = m.reshape(len(m), -1).max(axis=1)[:, None, None]
    return np.divide(m, top, out=np.zeros_like(m), where=top > 0)


def option_keys() -> list[tuple[str, object, str]]:
    """(``explain.<method>.<key>``, default, description) of every method option."""
    from reportgen.config import table_keys

    return [row for name, spec in REGISTRY.items()
            for row in table_keys(f"explain.{name}", spec.options)]


def options_dict(options, size: tuple[int, int] | None = None) -> dict:
    """A method's options as plain data (metrics.json, the pages): with the image ``size``
    (H, W), as run, automatic values resolved by the options' ``as_run(height, width)`` where
    they have one (occlusion's patch size 0: an eighth of the side)."""
    if size is not None and hasattr(options, "as_run"):
        return options.as_run(*size)
    return dataclasses.asdict(options)


__all__ = ["REGISTRY", "MethodSpec", "Cost", "Shape", "NoOptions", "OptionCut", "Reductions",
           "OUTPUT_KINDS", "get",
           "selected", "configure", "option_keys", "options_dict", "as_map"]
