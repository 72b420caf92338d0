"""The model card: the ``[card]`` section's statements beside the test metrics, as page data
(the overview, report.md, report.html) and as ``model_card.md``, a Hugging Face model card.

The card's front matter is YAML written here by hand (no YAML library at run time): every
string a user or the data gave (title, data folder, licence name) is a double-quoted scalar
with every character outside plain printable ASCII and Unicode escaped, so no value can end
its line, open a comment or start a mapping. Fields left empty say "not stated"; nothing is
invented. Never imports tensorflow.
"""

from __future__ import annotations

import re
from pathlib import Path

from markupsafe import Markup

from reportgen.text import printable

#: The card's statements in the order shown: (key of ``[card]``, heading).
FIELDS = (("intended_use", "Intended use"), ("out_of_scope_use", "Out-of-scope use"),
          ("limitations", "Limitations"), ("ethical_considerations", "Ethical considerations"))
NOT_STATED = "not stated"
#: The Hub's tags of every card reportgen writes.
TAGS = ("image-classification", "keras", "reportgen")
#: Licence identifiers the Hugging Face Hub lists (lower case); any other is written as
#: ``license: other`` with ``license_name``.
HF_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause
bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0
cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0
cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl
apple-ascl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl
lgpl-lr deepfloyd-if-license llama2 llama3 llama3.1 llama3.2 gemma unknown other
""".split())


def paragraphs(text: str) -> list[str]:
    """``text`` as paragraphs (split at blank lines; each one's line breaks and runs of spaces
    become one space, shown by :func:`~reportgen.text.printable`); [] for blank text."""
    blocks = re.split(r"\n[ \t\r\f\v]*\n", str(text).replace("\r\n", "\n"))
    return [printable(" ".join(b.split())) for b in blocks if b.strip()]


def licence(given: str) -> dict:
    """The card's licence: {"given", "id" (the Hub's identifier: the given one in lower case
    where the Hub lists it, "other" where not, "unknown" where none is given), "name" (the
    given identifier when "other", else None), "note" (why "other", else None)}."""
    if not given:
        return {"given": "", "id": "unknown", "name": None, "note": None}
    if given.lower() in HF_LICENSES:
        return {"given": given, "id": given.lower(), "name": None, "note": None}
    return {"given": given, "id": "other", "name": given,
            "note": f"{given} is not a licence identifier the Hugging Face Hub lists: "
                    f"model_card.md says license: other, license_name: {given}"}


def results(test: dict) -> list[dict]:
    """The test metrics the card reports, each {"type" (the Hub's metric id), "name", "value",
    "ci95", "args"}: accuracy, macro F1, top-k accuracy, and the macro average precision and
    ROC AUC where the build computed curves; [] without labelled test images."""
    if test.get("accuracy") is None or test["accuracy"] != test["accuracy"]:
        return []  # no labelled test image: nothing measured
    out = [{"type": "accuracy", "name": "Test accuracy", "value": test["accuracy"],
            "ci95": test.get("accuracy_ci95"), "args": None},
           {"type": "f1", "name": "Test macro F1", "value": test["macro_f1"],
            "ci95": test.get("macro_f1_ci95"), "args": {"average": "macro"}}]
    for key in sorted(k for k in test if re.fullmatch(r"top_\d+_accuracy", k)):
        k = key.split("_")[1]
        out.append({"type": "top_k_accuracy", "name": f"Test top-{k} accuracy",
                    "value": test[key], "ci95": test.get(f"{key}_ci95"), "args": {"k": int(k)}})
    macro = (test.get("curves") or {}).get("macro") or {}
    for key, mtype, name in (("average_precision", "average_precision", "macro average "
                              "precision"), ("roc_auc", "roc_auc", "macro ROC AUC")):
        if macro.get(key) is not None and macro[key] == macro[key]:
            out.append({"type": mtype, "name": f"Test {name} (one-vs-rest)",
                        "value": macro[key], "ci95": macro.get(f"{key}_ci95"),
                        "args": {"average": "macro"}})
    return out


def dataset_of(cfg, root) -> dict:
    """{"name", "type"} of the data set the card's results are on: the data folder's name
    (the shapes demo: "reportgen shapes demo"), its type that name as a Hub-style slug."""
    name = ("reportgen shapes demo" if cfg.data.source == "shapes" else
            Path(cfg.data.path).name or Path(str(root)).name or "images")
    slug = re.sub(r"[^a-z0-9]+", "-", printable(name).lower()).strip("-") or "images"
    return {"name": printable(name), "type": slug}


def card_context(cfg, test: dict, title: str, root) -> dict:
    """The model card as page data: "fields" ([{key, title, paragraphs}] of :data:`FIELDS`,
    [] where not stated), "authors", "license" (:func:`licence`), "citation" (its lines, [] for
    none), "results" (:func:`results` of the test metrics ``test``), "n" (test images),
    "dataset" (:func:`dataset_of`), "title" and "stated" (how many statements were given)."""
    card = cfg.card
    fields = [{"key": key, "title": heading, "paragraphs": paragraphs(getattr(card, key))}
              for key, heading in FIELDS]
    citation = [printable(line.rstrip()) for line in card.citation.strip("\n").splitlines()]
    authors = [printable(a.strip()) for a in card.authors]
    stated = sum(bool(f["paragraphs"]) for f in fields) + bool(authors) + bool(
        card.license) + bool(card.citation.strip())
    return {"fields": fields, "authors": authors, "license": licence(card.license),
            "citation": citation if card.citation.strip() else [], "results": results(test),
            "n": test.get("n", 0), "dataset": dataset_of(cfg, root), "title": printable(title),
            "stated": stated, "not_stated": NOT_STATED}


def yaml_str(text) -> str:
    """``text`` as a YAML double-quoted scalar on one line: backslash and quote escaped, and
    every character but printable ASCII and the printable Unicode planes escaped (line breaks,
    tabs, NEL and the Unicode line and paragraph separators included)."""
    out = []
    for ch in str(text):
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= o <= 0x7E or (0xA0 <= o <= 0xD7FF and o not in (0x2028, 0x2029)) \
                or 0xE000 <= o <= 0xFFFD and o != 0xFEFF or o >= 0x10000:
            out.append(ch)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}")
    return '"' + "".join(out) + '"'


def _yaml_number(value: float) -> str:
    return repr(float(value))


def front_matter(card: dict) -> Markup:
    """The YAML front matter of ``model_card.md`` (between ``---`` lines): license (and
    license_name), library_name, pipeline_tag, tags, and model-index with the test results
    (left out where there are none)."""
    lic = card["license"]
    lines = ["---", f"license: {yaml_str(lic['id'])}"]
    if lic["name"]:
        lines.append(f"license_name: {yaml_str(lic['name'])}")
    lines += ['library_name: "keras"', 'pipeline_tag: "image-classification"', "tags:"]
    lines += [f"- {yaml_str(t)}" for t in TAGS]
    if card["results"]:
        ds = card["dataset"]
        lines += ["model-index:", f"- name: {yaml_str(card['title'])}", "  results:",
                  "  - task:", '      type: "image-classification"',
                  '      name: "Image classification"', "    dataset:",
                  f"      name: {yaml_str(ds['name'])}", f"      type: {yaml_str(ds['type'])}",
                  '      split: "test"', "    metrics:"]
        for r in card["results"]:
            lines += [f"    - type: {yaml_str(r['type'])}", f"      name: {yaml_str(r['name'])}",
                      f"      value: {_yaml_number(r['value'])}"]
            if r["args"]:
                lines.append("      args:")
                lines += [f"        {k}: {yaml_str(v) if isinstance(v, str) else v}"
                          for k, v in r["args"].items()]
    lines.append("---")
    return Markup("\n".join(lines) + "\n")


def citation_fence(lines: list[str]) -> str:
    """A Markdown code fence longer than any run of backticks in ``lines``."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def card_page(index: dict) -> dict:
    """The context of ``model_card.md``: the overview's (``index``, holding ``card``) with the
    front matter and the citation's fence."""
    card = index["card"]
    return {**index, "card_front": front_matter(card),
            "card_fence": citation_fence(card["citation"])}
