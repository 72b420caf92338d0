"""A loaded model scored on a test set holding only some of its classes (issue 26): the
folder listing decides before TensorFlow loads; metrics cover the classes with images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bad_input import build, load_model_args, make_folder  # tests/ is on sys.path
from test_model_kinds import colour_model

from reportgen.data.folder import check_listing, load_dataset
from reportgen.errors import DataError
from reportgen.evaluate import split_metrics

ROOT = Path(__file__).resolve().parent.parent


def one_hot_probs(pred, k):
    """Probabilities 0.775 on the predicted class and 0.075 elsewhere (rows sum to 1)."""
    return np.eye(k)[pred] * 0.7 + 0.075


def test_metrics_over_the_present_classes_by_hand():
    # Classes a, b, c, d; only a and c have images. Predictions: a a->b a | c->a c c->d.
    names = ["a", "b", "c", "d"]
    true = np.array([0, 0, 0, 2, 2, 2])
    pred = np.array([0, 1, 0, 0, 2, 3])
    m = split_metrics(one_hot_probs(pred, 4), true, names, top_k=3, present=[0, 2])
    assert m["accuracy"] == pytest.approx(3 / 6)
    # Rows: true a, c; columns: every class the model can predict.
    assert m["confusion_matrix"] == [[2, 1, 0, 0], [1, 0, 1, 1]]
    assert m["confusion_rows"] == ["a", "c"]
    assert m["absent_classes"] == ["b", "d"]
    assert list(m["per_class"]) == ["a", "c"]
    # a: tp 2, predicted a 3 times (2 + one c) -> precision 2/3, recall 2/3, F1 2/3.
    a = m["per_class"]["a"]
    assert (a["precision"], a["recall"], a["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # c: tp 1, predicted c once -> precision 1, recall 1/3, F1 2 * 1/3 / (4/3) = 1/2.
    c = m["per_class"]["c"]
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == pytest.approx(
        (1.0, 1 / 3, 0.5, 3))
    # Macro F1 over the two present classes (over all four it would be 7/24).
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["macro_f1_ci95"][0] <= m["macro_f1"] <= m["macro_f1_ci95"][1]
    assert len(m["per_class"]["a"]["f1_ci95"]) == 2
    assert m["confusion_matrix_normalized"][1] == pytest.approx([1 / 3, 0, 1 / 3, 1 / 3])


def test_every_class_present_keeps_the_square_matrix():
    true, pred = np.array([0, 1, 1]), np.array([0, 1, 0])
    full = split_metrics(one_hot_probs(pred, 2), true, ["x", "y"])
    same = split_metrics(one_hot_probs(pred, 2), true, ["x", "y"], present=[0, 1])
    assert full == same
    assert "confusion_rows" not in full and full["confusion_matrix"] == [[1, 0], [1, 1]]


def png_folder(root: Path, counts: dict[str, int]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).save(
                root / name / f"{i}.png")
    return root


SEVEN = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_the_listing_accepts_missing_and_empty_folders_for_a_loaded_model(tmp_path):
    root = png_folder(tmp_path, {"happy": 4, "neutral": 4, "sad": 0})  # sad: an empty folder
    absent = check_listing(root, SEVEN, absent_ok=True)
    assert absent == ["angry", "disgust", "fear", "sad", "surprise"]
    ds = load_dataset(root, size=(8, 8), split=[0.5, 0.25, 0.25], classes=SEVEN, absent_ok=True)
    assert ds.class_names == SEVEN and ds.absent_classes == absent
    assert ds.present == [3, 6]
    assert set(ds.splits["test"].labels.tolist()) == {3, 6}


def test_the_listing_refuses_for_a_model_trained_here_naming_every_missing_class(tmp_path):
    root = png_folder(tmp_path, {"happy": 4, "neutral": 4})
    with pytest.raises(DataError) as err:
        check_listing(root, SEVEN, absent_ok=False)
    msg = str(err.value)
    assert "'angry', 'disgust', 'fear', 'sad' and 'surprise' have no folder" in msg
    with pytest.raises(DataError, match="'angry' has no folder"):
        check_listing(root, ["angry", "happy", "neutral"], absent_ok=False)
    with pytest.raises(DataError, match="folder 'neutral' in .* is not in data.classes"):
        check_listing(root, ["angry", "happy"], absent_ok=True)
    with pytest.raises(DataError, match="at least one class with image files"):
        check_listing(png_folder(tmp_path / "none", {"happy": 0}), ["happy", "sad"],
                      absent_ok=True)


def test_the_refusal_comes_before_tensorflow_loads(tmp_path):
    root = png_folder(tmp_path / "data", {"happy": 4, "neutral": 4})
    code = (
        "import sys, time\n"
        "from reportgen import config\n"
        "from reportgen.errors import DataError\n"
        "from reportgen.pipeline import build\n"
        f"cfg = config.load(None, ['data.source=\"folder\"', 'data.path=\"{root}\"',\n"
        "    'data.classes=[\"angry\", \"happy\", \"neutral\"]'])\n"
        "t = time.perf_counter()\n"
        "try:\n"
        f"    build(cfg, r'{tmp_path / 'site'}', show_progress=False)\n"
        "except DataError as e:\n"
        "    print('refused', 'tensorflow' in sys.modules, time.perf_counter() - t, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         cwd=ROOT, timeout=120)
    assert out.stdout.startswith("refused False"), out.stdout + out.stderr
    assert "'angry' has no folder" in out.stdout
    assert float(out.stdout.split()[2]) < 5.0


@pytest.mark.slow
def test_a_loaded_model_on_two_of_its_three_classes(keras, tmp_path):
    data = make_folder(tmp_path / "data", n=6)
    blue = data / "blue"
    for f in blue.iterdir():
        f.unlink()  # an empty folder; green: no folder at all
    for f in (data / "green").iterdir():
        f.unlink()
    (data / "green").rmdir()
    order = ["red", "green", "blue"]
    colour_model(keras, order).save(tmp_path / "m.keras")
    result = build(tmp_path, *load_model_args(tmp_path / "m.keras"),
                   'data.classes=["red", "green", "blue"]', data=data)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    test = metrics["splits"]["test"]
    assert metrics["classes"] == order and metrics["absent_classes"] == ["green", "blue"]
    assert test["confusion_rows"] == ["red"] and len(test["confusion_matrix"][0]) == 3
    assert list(test["per_class"]) == ["red"] and test["accuracy"] == 1.0
    assert any("No images of 2 classes of the model's 3: 'green' and 'blue'" in n
               for n in metrics["notes"])
    index = (tmp_path / "site" / "index.html").read_text()
    assert "No images of 2 classes" in index
