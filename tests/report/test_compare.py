"""reportgen compare: the statistics against independent computations, and an end-to-end
comparison of two smoke sites built from different models on the same data."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from math import comb

import numpy as np
import pytest
from click.testing import CliRunner

from reportgen import evaluate as ev
from reportgen.cli import main
from reportgen.report import MARKER
from reportgen.report.comparison import sentence



def binomial_two_sided(b, c):
    """Exact McNemar by hand: 2 x P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), at most 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize("b,c,want", [(2, 8, 2 * 56 / 1024), (0, 0, 1.0), (5, 5, 1.0),
                                      (0, 6, 2 / 64), (30, 10, None), (400, 350, None)])
def test_mcnemar_exact(b, c, want):
    got = ev.mcnemar_exact(b, c)
    assert got == pytest.approx(want if want is not None else binomial_two_sided(b, c),
                                rel=1e-12)
    assert got == ev.mcnemar_exact(c, b)


def test_wilson_interval_known_values():
    lo, hi = ev.wilson_interval(8, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert ev.wilson_interval(0, 20)[0] == 0.0 and ev.wilson_interval(20, 20)[1] == 1.0


def _paired(a, b, c, d):
    """(A right, B right) per image for a both right, b only B, c only A, d neither."""
    rb = np.array([1] * a + [1] * b + [0] * c + [0] * d, bool)
    ra = np.array([1] * a + [0] * b + [1] * c + [0] * d, bool)
    return ra, rb


def _newcombe_by_hand(a, b, c, d, z=1.959963984540054):
    """Newcombe's method 10 written out from Wilson bounds solved as quadratic roots."""
    n = a + b + c + d

    def wilson(k):
        ph = k / n
        return sorted(np.real(np.roots([1 + z * z / n, -(2 * ph + z * z / n), ph * ph])))
    p1, p2 = (a + b) / n, (a + c) / n
    (l1, u1), (l2, u2) = wilson(a + b), wilson(a + c)
    A, prod = a * d - b * c, (a + b) * (c + d) * (a + c) * (b + d)
    psi = 0 if prod == 0 or 0 <= A <= n / 2 else (A - n / 2 if A > 0 else A) / np.sqrt(prod)
    low = p1 - p2 - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2))
    high = p1 - p2 + np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1))
    return p1 - p2, low, high


def test_paired_difference_is_newcombes_interval():
    # Airway hyper-responsiveness (Bentur et al. 2009) in Fagerland, Lydersen & Laake 2014:
    # Newcombe's square-and-add interval -0.507 to -0.026.
    diff, lo, hi = ev.paired_difference(*_paired(1, 1, 7, 12))
    assert diff == pytest.approx(-6 / 21) and (round(lo, 3), round(hi, 3)) == (-0.507, -0.026)
    for cells in [(1, 1, 7, 12), (59, 6, 16, 80), (36, 12, 2, 0), (40, 3, 3, 4), (5, 0, 0, 0)]:
        assert ev.paired_difference(*_paired(*cells)) == pytest.approx(
            _newcombe_by_hand(*cells), abs=1e-9)


def test_paired_difference_keeps_its_coverage_where_a_bootstrap_collapses():
    """Two models right on all 100 images: a bootstrap says [0, 0]; Newcombe's interval holds
    0 with room on both sides. Seeded simulation on 60 images: about 95 % coverage, and at
    least that (conservative) where both models are right on 96 % of the images."""
    diff, lo, hi = ev.paired_difference(np.ones(100, bool), np.ones(100, bool))
    assert diff == 0 and -0.05 < lo < -0.02 and 0.02 < hi < 0.05
    rng = np.random.default_rng(11)
    coverage = []
    for probs in [(0.8, 0.08, 0.04, 0.08), (0.96, 0.02, 0.01, 0.01)]:
        truth = probs[1] - probs[2]
        hits = []
        for a, b, c, d in rng.multinomial(60, probs, 400):
            _, lo, hi = ev.paired_difference(*_paired(a, b, c, d))
            hits.append(lo <= truth <= hi)
        coverage.append(np.mean(hits))
    assert 0.93 <= coverage[0] <= 0.98 and coverage[1] >= 0.95


def test_the_sentence_names_the_better_model_only_when_significant():
    assert sentence("A", "B", 0.068, (0.031, 0.104), 0.0004) == \
        "B is better than A by 6.8 points, 95 % CI 3.1 to 10.4, McNemar p = 4.0e\u221204."
    assert sentence("A", "B", -0.068, (-0.104, -0.031), 0.0004) == \
        "A is better than B by 6.8 points, 95 % CI 3.1 to 10.4, McNemar p = 4.0e\u221204."
    text = sentence("A", "B", -0.012, (-0.031, 0.008), 0.27)
    assert text.startswith("No significant difference between A and B: B minus A is "
                           "\u22121.2 points")


def _record(maps: np.ndarray, label: str):
    from reportgen.report.comparison import SiteRecord

    n = len(maps)
    return SiteRecord(path=None, label=label, metrics={"classes": ["a", "b"]},
                      files=[f"{i}.png" for i in range(n)], true=np.arange(n) % 2,
                      probs=np.full((n, 2), 0.5), maps=maps.astype(np.float32))


def test_map_agreement_baseline_pairs_mismatched_images_as_documented():
    """Image i's map is a left-to-right ramp for even i, right-to-left for odd i: two maps
    correlate +1 when their images have the same parity, -1 otherwise."""
    from reportgen.report.comparison import map_agreement, map_agreement_baseline

    ramp = np.tile(np.arange(8, dtype=np.float32), (8, 1))
    maps = np.stack([ramp if i % 2 == 0 else ramp[:, ::-1] for i in range(9)])
    a, b = _record(maps, "A"), _record(maps, "B")
    assert (map_agreement(a, b) == 1).all()
    other = (np.arange(9) + np.random.default_rng(0).integers(1, 9, size=9)) % 9
    assert (other != np.arange(9)).all()
    want = np.where(other % 2 == np.arange(9) % 2, 1.0, -1.0)
    np.testing.assert_allclose(map_agreement_baseline(a, b), want, atol=1e-12)
    assert np.isnan(map_agreement_baseline(_record(maps[:1], "A"), _record(maps[:1], "B"))).all()


def test_a_centre_prior_shows_in_the_baseline(rng):
    """Maps that are mostly one centre blob agree across different images too: the baseline
    is high, so a high matched agreement alone says little."""
    from reportgen.report.comparison import map_agreement, map_agreement_baseline

    yy, xx = np.mgrid[:12, :12]
    blob = np.exp(-((yy - 5.5) ** 2 + (xx - 5.5) ** 2) / 20.0)
    own = rng.uniform(0, 0.2, (30, 12, 12))  # each image's own part
    a = _record(blob + own, "A")
    b = _record(blob + own + rng.uniform(0, 0.05, (30, 12, 12)), "B")
    matched = np.median(map_agreement(a, b))
    baseline = np.median(map_agreement_baseline(a, b))
    assert matched > 0.95 and 0.5 < baseline < matched


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory, smoke_site, second_site):
    """A folder for this module's outputs, and the two shared sites (tests/conftest.py)."""
    return tmp_path_factory.mktemp("compare"), smoke_site[0], second_site


def read_predictions(site):
    with open(site / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["file"] for r in rows], np.array([r["true"] == r["predicted"] for r in rows])


def test_compare_two_models_end_to_end(two_sites, md_tables):
    tmp, first, second = two_sites
    out = tmp / "cmp"
    result = CliRunner().invoke(main, ["compare", str(first), str(second), "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    files, right_a = read_predictions(first)
    files_b, right_b = read_predictions(second)
    assert files == files_b
    b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    pair = json.loads((out / "metrics.json").read_text())["pairs"][0]
    assert (pair["a_right_b_wrong"], pair["b_right_a_wrong"]) == (b, c)
    assert pair["mcnemar_statistic"] == min(b, c)
    assert pair["mcnemar_p"] == pytest.approx(binomial_two_sided(b, c), rel=1e-12)
    cells = (int(np.sum(right_a & right_b)), c, b, int(np.sum(~right_a & ~right_b)))
    want = _newcombe_by_hand(*cells)
    assert pair["accuracy_difference"] == pytest.approx(want[0])
    assert pair["accuracy_difference_ci"] == pytest.approx(list(want[1:]))
    assert "Newcombe" in pair["accuracy_difference_ci_method"]
    # The map agreement has its mismatched-image baseline beside it, page and metrics.
    assert -1 <= pair["map_rank_correlation_mismatched_median"] <= 1
    assert "mismatched" in pair["map_rank_correlation_mismatched"]
    # The disagreement gallery lists exactly the disagreeing images, each direction.
    html = (out / "index.html").read_text()
    a_only = html.split('id="pair-1-a_only"')[1].split('id="pair-1-b_only"')[0]
    b_only = html.split('id="pair-1-b_only"')[1].split("<h3")[0]  # to the next h3
    shown_a = re.findall(r'<div class="path">(.*?)</div>', a_only)
    shown_b = re.findall(r'<div class="path">(.*?)</div>', b_only)
    rows = list(zip(files, right_a, right_b, strict=True))
    assert sorted(shown_a) == sorted(f for f, x, y in rows if x and not y)
    assert sorted(shown_b) == sorted(f for f, x, y in rows if y and not x)
    for rel in re.findall(r'src="([^"]+)"', html):
        assert (out / rel).is_file(), rel
    assert (out / "report.md").is_file() and (out / "tables" / "models.tex").is_file()
    tables = md_tables((out / "report.md").read_text(encoding="utf-8"))
    models = next(t for t in tables if t[0][0] == "model")
    assert len(models) == 1 + 2  # a row per model
    assert f"Baseline: <b>{pair['map_rank_correlation_mismatched_median']:.2f}</b>" in html
    assert list((out / "fig").glob("*.pdf")) and list((out / "fig").glob("*.svg"))


def test_compare_refuses_different_test_sets_in_one_line(two_sites):
    tmp, first, _ = two_sites
    other = tmp / "other"  # the same site, as if built on test images with other contents
    if not other.exists():
        shutil.copytree(first, other)
        metrics = json.loads((other / "metrics.json").read_text())
        metrics["data"]["test_hash"] = hashlib.sha256(b"other test files").hexdigest()
        (other / "metrics.json").write_text(json.dumps(metrics))
        marker = json.loads((other / MARKER).read_text())
        marker["config"]["data"]["split_seed"] = 5  # smoke.toml's is 1
        (other / MARKER).write_text(json.dumps(marker))
    result = CliRunner().invoke(main, ["compare", str(first), str(other), "--out",
                                       str(tmp / "bad")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "different test sets" in lines[0]
    # ... and says how to share one: the data setting that differs, and the rule.
    assert "they differ in data.split_seed 1 vs 5; build both with the same" in lines[0]
    assert "(training.seed does not move the split)" in lines[0]
    assert str(first) in lines[0] and str(other) in lines[0]
    assert not (tmp / "bad").exists()


def test_compare_refuses_a_folder_that_is_not_a_site(two_sites, tmp_path):
    _, first, _ = two_sites
    result = CliRunner().invoke(main, ["compare", str(first), str(tmp_path)])
    assert result.exit_code == 2 and "not a site built by reportgen build" in result.output
    assert "Traceback" not in result.output


def test_compare_reads_the_images_from_the_local_marker_not_metrics_json(tmp_path):
    """metrics.json names the data folder only ("photos"); the marker, which stays on this
    machine, holds where it is, and the comparison's tiles are decoded from there."""
    import json as _json

    import numpy as np
    from PIL import Image

    from reportgen.report.comparison import load_site
    from reportgen.report.comparison import decode_or_grey
    from reportgen.report.site import MARKER

    photos = tmp_path / "elsewhere" / "photos"
    (photos / "a").mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), (250, 10, 10), np.uint8)).save(photos / "a" / "0.png")
    site = tmp_path / "site"
    site.mkdir()
    (site / MARKER).write_text(_json.dumps({"files": [], "data_root": str(photos)}))
    (site / "metrics.json").write_text(_json.dumps({
        "classes": ["a", "b"], "labeled": True, "data": {"root": "photos"},
        "compare": {"predictions": "predictions.csv", "maps": None}}))
    (site / "predictions.csv").write_text("file,true,predicted,a,b\na/0.png,a,a,0.9,0.1\n")
    record = load_site(site, "A")
    assert record.data_root == photos
    tile = decode_or_grey(record, 0, (8, 8))
    assert tuple(tile[4, 4]) == (250, 10, 10)  # the photo, not the grey stand-in
    (site / MARKER).write_text(_json.dumps({"files": []}))  # an old site: no data_root
    assert load_site(site, "A").data_root is None
    assert tuple(decode_or_grey(load_site(site, "A"), 0, (8, 8))[4, 4]) == (128, 128, 128)
