"""The audit of a whole (synthetic) data set: records, headline counts and intervals."""

from __future__ import annotations

import numpy as np
import pytest

from reportgen.audit.issues import audit_data
from reportgen.data.folder import Split
from reportgen.evaluate import wilson_interval

NAMES = ["a", "b", "c"]


def split(images, labels, name, labeled=True):
    """A split whose files were stored at 64 x 64 px (test 4: 200 x 30, an odd aspect, and
    small: 30 < 0.5 x 64)."""
    n = len(images)
    sizes = np.full((n, 2), 64)
    if name == "test" and n > 4:
        sizes[4] = [200, 30]
    return Split(images, np.asarray(labels), [f"{name}/{i}.png" for i in range(n)],
                 np.full((n, 4), np.nan, np.float32), labeled, sizes=sizes)


def confident(labels, top=0.9):
    p = np.full((len(labels), 3), (1 - top) / 2)
    p[np.arange(len(labels)), labels] = top
    return p


@pytest.fixture
def planted(rng, textures, reencode):
    """train 120, val 30, test 40 textures with class features; test 0 is train 5's exact
    copy, test 1 train 6's re-encoded copy, test 2 pure noise; the model is wrong on test
    10-17 and right elsewhere; test 20 is labelled b, a confidently predicted a."""
    y = {"train": rng.integers(0, 3, 120), "val": rng.integers(0, 3, 30),
         "test": np.arange(40) % 3}
    imgs = {k: textures(rng, len(v)) for k, v in y.items()}
    centres = rng.normal(0, 1, (3, 16))
    feats = {k: centres[v] + 0.05 * rng.normal(0, 1, (len(v), 16)) for k, v in y.items()}
    for t, s, img in ((0, 5, imgs["train"][5]), (1, 6, reencode(imgs["train"][6]))):
        imgs["test"][t], y["test"][t], feats["test"][t] = img, y["train"][s], feats["train"][s]
    imgs["test"][2] = rng.integers(0, 256, (32, 32, 3))
    imgs["test"][3] //= 16  # very dark
    probs = {k: confident(v) for k, v in y.items()}
    probs["test"][10:18] = confident((y["test"][10:18] + 1) % 3)
    y["test"][20] = 1
    probs["test"][20] = confident(np.array([0]))[0]
    return {k: split(imgs[k], y[k], k) for k in y}, probs, feats


def test_audit_finds_what_was_planted(planted):
    splits, probs, feats = planted
    r = audit_data(splits, probs, NAMES, feats)
    pairs = [(d["a"], d["b"], d["kind"]) for d in r.duplicates]
    assert pairs == [("train/5.png", "test/0.png", "exact"),
                     ("train/6.png", "test/1.png", "near")]
    assert r.summary["test_in_train"] == {"count": 2, "n": 40, "rate": 0.05,
                                          "ci95": list(wilson_interval(2, 40)),
                                          "train_images": 120}
    # Wrong on 8 of 40 (test 10-17) and on test 20 (labelled b, predicted a): 31 right;
    # without test 0 and 1 (both right): 29 of 38.
    acc = r.summary["accuracy"]
    assert (acc["all"]["count"], acc["all"]["n"]) == (31, 40)
    assert (acc["without_copies"]["count"], acc["without_copies"]["n"]) == (29, 38)
    # The noise image and the very dark one are far from every training image (in pixel
    # statistics); nothing else is as far.
    assert {d["file"] for d in r.outliers[:2]} == {"test/2.png", "test/3.png"}
    assert {"file": "test/3.png", "split": "test", "index": 3, "flags": ["dark"]} in r.quality
    assert {"file": "test/4.png", "split": "test", "index": 4,
            "flags": ["odd aspect", "small"]} in r.quality
    # Every image the model confidently contradicts is a candidate (test 10-17 and 20); the
    # score is 1 - p(given label), so the ranking is by self-confidence.
    errors = {d["file"]: d for d in r.label_errors}
    assert set(errors) == {f"test/{i}.png" for i in [*range(10, 18), 20]}
    assert errors["test/20.png"]["given"] == "b" and errors["test/20.png"]["suggested"] == "a"
    assert errors["test/20.png"]["score"] == pytest.approx(0.95)
    scores = [d["score"] for d in r.label_errors]
    assert scores == sorted(scores, reverse=True)
    assert r.summary["label_errors"]["val"]["count"] == 0


def test_unlabeled_data_gets_duplicates_outliers_and_quality_only(planted):
    splits, probs, feats = planted
    splits = {k: split(s.images, np.full(len(s), -1), k, labeled=False)
              for k, s in splits.items()}
    r = audit_data(splits, probs, NAMES, feats)
    assert r.label_errors == [] and "accuracy" not in r.summary
    assert any("no labels" in n for n in r.notes)
    assert len(r.duplicates) == 2 and r.outliers[0]["file"] in ("test/2.png", "test/3.png")


def test_without_features_only_exact_copies_and_pixel_outliers(planted):
    splits, probs, _ = planted
    r = audit_data(splits, probs, NAMES, None)
    assert [d["kind"] for d in r.duplicates] == ["exact"]
    assert r.summary["test_in_train"]["count"] == 1
    assert {d["file"] for d in r.outliers[:2]} == {"test/2.png", "test/3.png"}
    assert any("no features" in n for n in r.notes)


def test_without_training_images_test_images_are_compared_with_each_other(rng, textures):
    """Photos without labels have test images only: no leakage is claimed, outliers are
    looked for among the test images (the noise image 3 stands out), and with fewer than two
    images nothing is compared."""
    empty = split(np.zeros((0, 32, 32, 3), np.uint8), [], "train")
    images = textures(rng, 12)
    images[3] = rng.integers(0, 256, (32, 32, 3))
    splits = {"train": empty, "val": empty, "test": split(images, np.full(12, -1), "test",
                                                            labeled=False)}
    probs = {k: confident(np.zeros(len(s), int)) for k, s in splits.items()}
    r = audit_data(splits, probs, NAMES, None)
    assert r.summary["test_in_train"]["train_images"] == 0
    assert r.outliers[0]["file"] == "test/3.png" and r.summary["outliers"]["reference"] == "test"
    assert any("no training images" in n for n in r.notes)
    splits["test"] = split(images[:1], [-1], "test", labeled=False)
    r = audit_data(splits, {k: v[:1] for k, v in probs.items()}, NAMES, None)
    assert r.outliers == [] and any("fewer than two" in n for n in r.notes)
