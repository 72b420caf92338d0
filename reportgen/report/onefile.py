"""``report.html``: the whole report in one self-contained file, to attach to a review, an
e-mail or a paper's supplement, or to print.

It is rendered from the page contexts the site's pages were rendered from (the overview's and
report.md's: nothing is computed again) once every image of the site is written: each image it
shows is read back and inlined as a ``data:`` URI (figures re-encoded as WebP within
:data:`FIGURE_SIDE` pixels, gallery thumbnails as the JPEGs they are), the stylesheet is
inlined, and nothing links outside the file. Galleries are thinned (:func:`thin_classes`) and
the file states its size and what it leaves out. Never imports tensorflow.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from markupsafe import Markup

from reportgen.report.render import environment, render, templates_dir

#: Gallery tiles shown per class at most, and in the whole file at most.
CLASS_TILES = 4
ALL_TILES = 120
#: The most confident errors shown with their maps.
ERROR_TILES = 4
#: Test images shown across every method (the first of the Methods page's).
METHOD_IMAGES = 4
#: Longest side in pixels of a figure in the file, and the WebP quality it is encoded at.
FIGURE_SIDE = 1100
QUALITY = 82
#: Files up to this size, and JPEGs, are inlined as they are.
AS_IS_BYTES = 16_000
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".webp": "image/webp", ".svg": "image/svg+xml"}
#: The print stylesheet of the file (after the site's own): no navigation, each part on a
#: new page, nothing cut in two.
PRINT_CSS = """
@page { margin: 14mm 12mm; }
@media print {
  nav, .toc, .permalink, footer, .screen-only { display: none !important; }
  body { font-size: 10.5pt; background: #fff; color: #000; }
  .wrap { max-width: none; padding: 0; }
  section.part { break-before: page; }
  section.part.first { break-before: auto; }
  figure, .tile, tr, pre, dl.card dd, .headline, .class-summary { break-inside: avoid; }
  table { break-inside: avoid; width: 100%; }
  .table-wrap { overflow: visible; background: none; }
  th, td { white-space: normal !important; }
  h2, h3 { break-after: avoid; }
  img.figure { filter: none !important; max-height: 22cm; width: auto; }
}
"""
FAVICON = "favicon.svg"
#: The evaluation's curve data where the build has none (the overview's keys, shown when set).
CURVES = {"t_curves": None, "thr_text": None, "fig_pr": None, "fig_roc": None, "fig_thr": None}


def encode(path: Path, side: int | None) -> tuple[bytes, str]:
    """The bytes and MIME type ``path`` is inlined as: a JPEG, an SVG or a file of at most
    :data:`AS_IS_BYTES` as it is; a larger image re-encoded as WebP (quality :data:`QUALITY`)
    within ``side`` pixels (None: its own size)."""
    data, suffix = path.read_bytes(), path.suffix.lower()
    if suffix in (".jpg", ".jpeg", ".svg") or len(data) <= AS_IS_BYTES:
        return data, MIME.get(suffix, "application/octet-stream")
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        small = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    if side and max(small.size) > side:
        small.thumbnail((side, side))
    out = io.BytesIO()
    small.save(out, "WEBP", quality=QUALITY, method=4)
    return (out.getvalue(), "image/webp") if out.tell() < len(data) else (data, MIME[suffix])


class Inliner:
    """``data:`` URIs of a site's written files, each made once (:func:`encode`); a file that
    was not written (a failed image) gives "" and is listed in ``missing``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.uris: dict[str, str] = {}
        self.missing: list[str] = []

    def __call__(self, rel: str, side: int | None = None) -> str:
        if rel not in self.uris:
            path = self.folder / rel
            if not path.is_file():
                self.missing.append(rel)
                self.uris[rel] = ""
            else:
                data, mime = encode(path, side)
                self.uris[rel] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return self.uris[rel]


def _round_robin(sections: list[dict], limit: int) -> list[list[dict]]:
    """Up to ``limit`` tiles of ``sections`` taken in turn from each (errors first, as the
    class page orders them): [the tiles kept of each section]."""
    kept: list[list[dict]] = [[] for _ in sections]
    depth, left = 0, limit
    while left > 0 and any(depth < len(s["tiles"]) for s in sections):
        for k, sec in enumerate(sections):
            if left and depth < len(sec["tiles"]):
                kept[k].append(sec["tiles"][depth])
                left -= 1
        depth += 1
    return kept


def thin_classes(class_pages: list[dict]) -> tuple[list[dict], int]:
    """Each class's summary with a few of its gallery tiles: at most :data:`CLASS_TILES` per
    class and :data:`ALL_TILES` in all (one each for the first :data:`ALL_TILES` classes when
    there are more), taken in turn from its sections. Return the classes (each {"name",
    "metrics", "sections": [{"title", "count"}], "tiles", "wide" (a tile of three images)})
    and the number of tiles on the class pages."""
    per = max(1, min(CLASS_TILES, ALL_TILES // max(1, len(class_pages))))
    out, total = [], 0
    for k, page in enumerate(class_pages):
        total += sum(len(s["tiles"]) for s in page["sections"])
        limit = per if k < ALL_TILES else 0  # past ALL_TILES classes: their numbers alone
        tiles = [t for kept in _round_robin(page["sections"], limit) for t in kept]
        out.append({"name": page["name"], "metrics": page["metrics"],
                    "sections": [{"title": s["title"], "count": s["count"]}
                                 for s in page["sections"]],
                    "tiles": tiles, "wide": any(len(t["views"]) > 2 for t in tiles)})
    return out, total


def _left_out(ctx: dict, shown: int, total: int) -> list[str]:
    """What the file leaves out that the site holds, in words."""
    out = [f"gallery tiles: {shown} of the {total} on the class pages ({CLASS_TILES} per "
           f"class at most, {ALL_TILES} in all), and every image at full size"]
    if ctx["m"].get("rows"):
        out.append(f"the Methods page's images: {min(METHOD_IMAGES, len(ctx['m']['rows']))} "
                   f"of {len(ctx['m']['rows'])} test images across every method, and the "
                   f"GradCAM per class grid")
    if len(ctx.get("cms") or {}) > 1:
        out.append("the train and val confusion matrices")
    out += ["the Layers page (feature maps, filter patterns, receptive fields, deep dream)",
            "the Model page's layer and configuration tables",
            "the figures' SVG and PDF files and the LaTeX tables",
            "predictions.csv, explanations.npz and metrics.json (every number)"]
    return out


def single_context(ctx: dict) -> dict:
    """The context of ``report.html`` from report.md's (``ctx``: the overview's, with the
    class pages, the Methods page's data and the errors page): the thinned classes, the
    first images across the methods, and what the file leaves out."""
    classes, total = thin_classes(ctx.get("class_pages") or [])
    shown = sum(len(c["tiles"]) for c in classes)
    css = (templates_dir() / "style.css").read_text(encoding="utf-8") + PRINT_CSS
    return {**CURVES, **ctx, "one_classes": classes, "one_left_out": _left_out(ctx, shown, total),
            "one_methods": (ctx["m"].get("rows") or [])[:METHOD_IMAGES],
            "one_errors": (ctx["errors"]["sections"][0]["tiles"][:ERROR_TILES]
                           if ctx.get("errors") else []),
            "one_css": Markup(css), "figure_side": FIGURE_SIDE}


def write_single(folder: Path, pages: list, failed: dict) -> Path | None:
    """Write ``report.html`` into the site ``folder`` (its images already written) from the
    gathered ``pages`` (report.md's context), with ``failed`` (the pages' failure context);
    return its path, or None where report.md's context is missing (its part failed)."""
    ctx = next((p.context for p in pages if p.rel == "report.md"), None)
    if ctx is None:
        return None
    inliner = Inliner(folder)
    env = environment()
    env.filters["inline"] = inliner
    context = {**single_context(ctx), **failed,
               "one_icon": inliner(FAVICON) if (folder / FAVICON).is_file() else "",
               "one_size": "", "one_missing": inliner.missing}
    out = folder / "report.html"
    text = render(env, "single.html", context)
    # Its size is stated in it: measured on a first rendering, then rendered again.
    context["one_size"] = megabytes(len(text.encode("utf-8")))
    out.write_text(render(env, "single.html", context), encoding="utf-8")
    return out


def megabytes(n: int) -> str:
    """``n`` bytes in words: "2.3 MB", "640 kB"."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"
