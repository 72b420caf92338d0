"""Bad input: every mistake ends in a one-line message naming the file or key, exit code 2 for
usage and config errors, no traceback; bad images are skipped and listed; nothing is lost."""

from __future__ import annotations

import io
import json
import zlib
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from reportgen.cli import main
from reportgen.data import decode_image, load_dataset

SIZE = 16
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 210)}


# -- helpers ---------------------------------------------------------------------------------------

def make_folder(root: Path, classes=COLOURS, n=6) -> Path:
    """Write ``n`` noisy solid-colour PNGs per class."""
    rng = np.random.default_rng(0)
    for name, colour in classes.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = np.clip(np.array(colour) + rng.normal(0, 10, (SIZE, SIZE, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(d / f"img_{i}.png")
    return root


def tiny_model(keras, *, classes=3, size=SIZE, conv=True, outputs=1):
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    if conv:
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        x = keras.layers.Flatten()(x)
    outs = [keras.layers.Dense(classes, activation="softmax", name=f"out{i}")(x)
            for i in range(outputs)]
    return keras.Model(inp, outs if outputs > 1 else outs[0])


def build(tmp_path, *extra, out=None, data=None):
    """Run ``reportgen build`` on a folder data set; return the click Result."""
    args = ["build", "--quiet", "--out", str(out or tmp_path / "site"),
            "--config", str(Path(__file__).parent.parent / "configs" / "smoke.toml"),
            "--set", "report.figure_formats=['png']", "--set", "training.epochs=1"]
    if data is not None:
        args += ["--set", "data.source=folder", "--set", f"data.path={data}",
                 "--set", "data.split=[0.5, 0.25, 0.25]"]
    for e in extra:
        args += ["--set", e]
    return CliRunner().invoke(main, args)


def assert_one_line_error(result, code, *needles):
    assert result.exit_code == code, result.output
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("Error: ")
    for n in needles:
        assert n in text, text


def load_model_args(path):
    return ["model.source=load", f"model.path={path}"]


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "data")


@pytest.fixture
def saved(keras, tmp_path):
    def save(model, name="m.keras"):
        p = tmp_path / name
        model.save(p)
        return p
    return save


# -- images: skipped, warned, listed; the build goes on ------------------------------------------

def skipped_of(root):
    ds = load_dataset(root, size=(SIZE, SIZE), split=[0.5, 0.25, 0.25], seed=0)
    return dict(ds.skipped), ds


def test_corrupt_bytes_skipped(folder):
    (folder / "red" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    skipped, _ = skipped_of(folder)
    assert "red/bad.png" in skipped


def test_zero_byte_file_skipped(folder):
    (folder / "red" / "zero.jpg").write_bytes(b"")
    assert skipped_of(folder)[0]["red/zero.jpg"] == "empty file (0 bytes)"


def test_text_file_named_jpg_skipped(folder):
    (folder / "red" / "notes.jpg").write_text("this is text")
    assert "not a recognised image format" in skipped_of(folder)[0]["red/notes.jpg"]


def test_truncated_jpeg_skipped(folder):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, "JPEG")
    (folder / "red" / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert "truncated" in skipped_of(folder)[0]["red/cut.jpg"]


def _png_header_only(width, height) -> bytes:
    """A small PNG whose header claims width x height (1-bit), data compressed to nothing."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    raw = zlib.compress(row * 64, 9)  # only part of the rows: decoding would need them all
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_decompression_bomb_refused_before_decoding(folder):
    (folder / "red" / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    reason = skipped_of(folder)[0]["red/bomb.png"]
    assert "decompression bomb" in reason


def test_hidden_files_skipped(folder):
    (folder / "red" / ".hidden.png").write_bytes((folder / "red" / "img_0.png").read_bytes())
    assert skipped_of(folder)[0]["red/.hidden.png"] == "hidden file"


def test_non_image_files_skipped(folder):
    (folder / "green" / "labels.csv").write_text("a,b")
    assert skipped_of(folder)[0]["green/labels.csv"] == "not an image file (.csv)"


@pytest.mark.slow
def test_skipped_files_listed_in_report(folder, tmp_path, keras, saved):
    (folder / "red" / "zero.png").write_bytes(b"")
    m = saved(tiny_model(keras))
    result = build(tmp_path, *load_model_args(m), data=folder)
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    assert "red/zero.png" in (site / "index.html").read_text()
    assert "red/zero.png" in (site / "report.md").read_text()
    assert {"path": "red/zero.png", "reason": "empty file (0 bytes)"} in \
        json.loads((site / "metrics.json").read_text())["skipped"]


# -- images: converted, not skipped ---------------------------------------------------------------

def decode_one(tmp_path, img: Image.Image, name="x.png", **save):
    p = tmp_path / name
    img.save(p, **save)
    return decode_image(p, (img.height, img.width))[0]


def test_grayscale_to_rgb(tmp_path):
    arr = decode_one(tmp_path, Image.new("L", (4, 4), 77))
    assert arr.shape == (4, 4, 3) and (arr == 77).all()


def test_rgba_composited_on_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    img.putpixel((0, 0), (0, 0, 255, 0))  # fully transparent
    img.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black over white -> ~127
    arr = decode_one(tmp_path, img)
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[1, 1].tolist() == [255, 0, 0]
    assert abs(int(arr[0, 1, 0]) - 127) <= 1


def test_palette_image(tmp_path):
    img = Image.new("P", (4, 4))
    img.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    img.putpixel((2, 2), 1)
    arr = decode_one(tmp_path, img)
    assert arr[2, 2].tolist() == [10, 200, 30] and arr[0, 0].tolist() == [0, 0, 0]


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    arr = decode_one(tmp_path, img, "c.jpg", quality=95)
    r, g, b = arr[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png(tmp_path):
    arr16 = np.array([[0, 65535], [32896, 65535]], np.uint16)
    img = Image.fromarray(arr16)  # mode I;16
    arr = decode_one(tmp_path, img)
    assert arr[0, 0].tolist() == [0, 0, 0] and arr[0, 1].tolist() == [255, 255, 255]
    assert abs(int(arr[1, 0, 0]) - 128) <= 1


def test_exif_rotated_jpeg(tmp_path):
    # Stored 20 wide x 10 high, red on the left half; orientation 6 = rotate 90 degrees clockwise
    # for display, so the displayed image is 10 wide x 20 high with red on top.
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :10] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif, quality=95)
    out, orig = decode_image(p, (20, 10))
    assert orig == (10, 20)
    assert out[2, 5, 0] > 200 and out[17, 5, 0] < 60


def test_upper_case_extensions_spaces_and_non_ascii_names(tmp_path):
    root = make_folder(tmp_path / "d", n=4)
    src = (root / "red" / "img_0.png").read_bytes()
    (root / "red" / "PHOTO ONE.PNG").write_bytes(src)
    (root / "red" / "café ünïcode.JPG").write_bytes(
        _jpeg_bytes((root / "red" / "img_1.png")))
    ds = load_dataset(root, size=(SIZE, SIZE), split=[0.5, 0.25, 0.25], seed=0)
    paths = [p for s in ds.splits.values() for p in s.paths]
    assert "red/PHOTO ONE.PNG" in paths and "red/café ünïcode.JPG" in paths
    assert ds.skipped == []


def _jpeg_bytes(png: Path) -> bytes:
    buf = io.BytesIO()
    Image.open(png).save(buf, "JPEG")
    return buf.getvalue()


# -- data sets ------------------------------------------------------------------------------------

def test_missing_data_folder(tmp_path):
    result = build(tmp_path, data=tmp_path / "nowhere")
    assert_one_line_error(result, 2, "data.path", "nowhere")


@pytest.mark.slow
def test_class_with_no_readable_image_dropped_with_warning(tmp_path, keras, saved):
    root = make_folder(tmp_path / "d")
    (root / "zz_broken").mkdir()
    (root / "zz_broken" / "a.png").write_bytes(b"")
    m = saved(tiny_model(keras))
    result = build(tmp_path, *load_model_args(m), data=root)
    assert result.exit_code == 0, result.output
    assert "zz_broken" in result.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Classes dropped" in index and "zz_broken" in index


def test_single_class_is_an_error(tmp_path):
    root = make_folder(tmp_path / "d", classes={"red": (200, 0, 0)})
    assert_one_line_error(build(tmp_path, data=root), 2, "at least two classes", "red")


def test_too_few_images_for_fractions(tmp_path):
    root = make_folder(tmp_path / "d", n=6)
    for p in list((root / "blue").iterdir())[1:]:
        p.unlink()
    assert_one_line_error(build(tmp_path, data=root), 2, "blue", "too few", "data.split")


@pytest.mark.slow
def test_html_in_class_names_escaped_everywhere(tmp_path, keras, saved):
    evil = '<b>&"x"'
    root = make_folder(tmp_path / "d", classes={evil: (200, 0, 0), "plain": (0, 200, 0),
                                                "script<script>": (0, 0, 200)})
    m = saved(tiny_model(keras))
    result = build(tmp_path, *load_model_args(m), data=root)
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    for page in site.glob("*.html"):
        html = page.read_text()
        assert evil not in html and "<script>" not in html, page.name
    assert "&lt;b&gt;&amp;&#34;x&#34;" in (site / "index.html").read_text()
    md = (site / "report.md").read_text()
    assert evil not in md and "<script>" not in md
    assert r"\<b\>\&" in md


# -- models ---------------------------------------------------------------------------------------

def test_missing_model_file(tmp_path, folder):
    result = build(tmp_path, *load_model_args(tmp_path / "gone.keras"), data=folder)
    assert_one_line_error(result, 2, "model.path", "gone.keras", "not found")


def test_file_that_is_not_a_keras_model(tmp_path, folder):
    bad = tmp_path / "fake.keras"
    bad.write_text("not a model")
    assert_one_line_error(build(tmp_path, *load_model_args(bad), data=folder), 2,
                          "fake.keras", "not a Keras model")


def test_corrupt_savedmodel_folder_is_one_line(tmp_path, folder):
    d = tmp_path / "exported"
    d.mkdir()
    (d / "saved_model.pb").write_bytes(b"\x00")
    assert_one_line_error(build(tmp_path, *load_model_args(d), data=folder), 2,
                          "exported", "could not be read as a SavedModel")


def test_lambda_layer_refused_under_safe_mode_names_the_flag(tmp_path, folder, keras, saved):
    inp = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Lambda(lambda t: t / 255.0)(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    m = saved(keras.Model(inp, out), "lambda.keras")
    assert_one_line_error(build(tmp_path, *load_model_args(m), data=folder), 2,
                          "lambda.keras", "Lambda", "model.safe_mode = false")


def test_custom_layer_named(tmp_path, folder, keras, saved):
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    Doubler.__module__ = "module_that_does_not_exist"
    inp = keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(Doubler()(inp)))
    m = saved(keras.Model(inp, out), "custom.keras")
    assert_one_line_error(build(tmp_path, *load_model_args(m), data=folder), 2,
                          "custom.keras", "'Doubler'", "register_keras_serializable")


def test_output_count_differs_from_classes(tmp_path, folder, keras, saved):
    m = saved(tiny_model(keras, classes=5))
    assert_one_line_error(build(tmp_path, *load_model_args(m), data=folder), 2,
                          "predicts 5 classes", "the data has 3")


@pytest.mark.slow
def test_input_size_differs_images_resized(tmp_path, folder, keras, saved):
    m = saved(tiny_model(keras, size=24))
    result = build(tmp_path, *load_model_args(m), data=folder)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "site" / "metrics.json").read_text())
    assert metrics["model"]["input_shape"] == [24, 24, 3]
    assert any("resized to the model's input, 24x24" in n for n in metrics["notes"])


@pytest.mark.slow
def test_model_without_conv_layer_skips_gradcam_builds_rest(tmp_path, folder, keras, saved):
    m = saved(tiny_model(keras, conv=False))
    result = build(tmp_path, *load_model_args(m), data=folder)
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    notes = json.loads((site / "metrics.json").read_text())["notes"]
    assert any("GradCAM was skipped" in n and "no conv layer" in n for n in notes)
    assert "no convolutional layer" in (site / "index.html").read_text()
    assert (site / "fig" / "confusion_test.png").is_file()


@pytest.mark.slow
def test_multi_output_model_says_which_output(tmp_path, folder, keras, saved):
    m = saved(tiny_model(keras, outputs=2))
    result = build(tmp_path, *load_model_args(m), "model.output_index=1", data=folder)
    assert result.exit_code == 0, result.output
    notes = json.loads((tmp_path / "site" / "metrics.json").read_text())["notes"]
    assert any("2 outputs" in n and "output 1 (model.output_index)" in n for n in notes)
    bad = build(tmp_path, *load_model_args(m), "model.output_index=4", data=folder,
                out=tmp_path / "other")
    assert_one_line_error(bad, 2, "model.output_index", "2 output")


# -- config and CLI -------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, needles", [
    ("data.imagesize=3", ["unknown key data.imagesize", "did you mean 'data.image_size'"]),
    ("trainin.epochs=3", ["unknown section [trainin]", "did you mean 'training'"]),
    ("training.epochs='many'", ["training.epochs", "expected integer", "'many'"]),
    ("training.epochs=-1", ["training.epochs", "below the minimum"]),
    ("data.split=[0.8, 0.3, 0.1]", ["data.split", "sum to 1"]),
])
def test_config_values(tmp_path, setting, needles):
    assert_one_line_error(build(tmp_path, setting), 2, *needles)


def test_unreadable_toml_gives_line_and_column(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[data]\nsource = "shapes"\nimage_size = = 3\n')
    result = CliRunner().invoke(main, ["build", "--config", str(bad), "--out",
                                       str(tmp_path / "o")])
    assert_one_line_error(result, 2, "bad.toml", "line 3", "column")


def test_missing_config_file(tmp_path):
    result = CliRunner().invoke(main, ["build", "--config", str(tmp_path / "none.toml")])
    assert_one_line_error(result, 2, "none.toml", "not found")


def test_debug_flag_shows_traceback(tmp_path):
    result = CliRunner().invoke(main, ["build", "--debug", "--set", "data.imagesize=3"])
    assert result.exit_code != 0
    assert result.exception is not None and "data.imagesize" in str(result.exception)


# -- runs -----------------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_ctrl_c_keeps_previous_site_and_rerun_works(tmp_path, folder, keras, saved, monkeypatch):
    m = saved(tiny_model(keras))
    assert build(tmp_path, *load_model_args(m), data=folder).exit_code == 0
    before = snapshot(tmp_path / "site")
    import reportgen.report as report

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_site", interrupted)
    result = build(tmp_path, *load_model_args(m), data=folder)
    assert result.exit_code == 130
    assert "left as it was" in result.output and "Traceback" not in result.output
    assert snapshot(tmp_path / "site") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["data", "m.keras", "site"])
    monkeypatch.undo()
    assert build(tmp_path, *load_model_args(m), data=folder).exit_code == 0


def test_foreign_output_folder_never_cleared(tmp_path, folder):
    out = tmp_path / "my-notes"
    out.mkdir()
    (out / "todo.txt").write_text("keep me")
    result = build(tmp_path, data=folder, out=out)
    assert_one_line_error(result, 2, "my-notes", "not written by reportgen")
    assert snapshot(out) == {"todo.txt": b"keep me"}
