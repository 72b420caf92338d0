"""The metadata file (data.metadata): read, matched to the images, refused in one line when
wrong."""

from __future__ import annotations

import pytest

from reportgen.data.metadata import read_metadata, read_table
from reportgen.errors import DataError

KNOWN = ["cat/1.png", "cat/2.png", "dog/1.png"]


def _read(tmp_path, text: str, skipped=()):
    path = tmp_path / "meta.csv"
    path.write_text(text, encoding="utf-8")
    return read_metadata(path, "meta.csv", KNOWN, list(skipped))


def test_rows_are_matched_in_any_column_order_and_spelling(tmp_path):
    meta = _read(tmp_path, "\ufeffcamera,file,site\nphone,./cat/1.png,a\n"
                           "dslr, dog\\1.png ,b\n\n")
    assert meta.columns == ["camera", "site"]
    values, missing = meta.values(KNOWN)
    assert values == {"camera": ["phone", "", "dslr"], "site": ["a", "", "b"]}
    assert missing == 1


def test_rows_of_skipped_files_are_counted_not_kept(tmp_path):
    meta = _read(tmp_path, "file,camera\ncat/1.png,phone\ncat/bad.png,phone\n",
                 skipped=["cat/bad.png"])
    assert meta.skipped_rows == 1 and list(meta.rows) == ["cat/1.png"]


@pytest.mark.parametrize("text,words", [
    ("name,camera\ncat/1.png,phone\n", "has no 'file' column (columns: 'name', 'camera')"),
    ("file,camera\ncat/1.png,phone\n./cat/1.png,dslr\n", "'cat/1.png' is listed twice "
                                                          "(lines 2 and 3)"),
    ("file,camera\ncat/1.png,phone\nbird/1.png,x\nfish/2.png,y\n",
     "2 file(s) are not images of the data set: 'bird/1.png', 'fish/2.png'"),
    ("file,camera\ncat/1.png\n", "line 2: 1 cells, the header has 2"),
    ("file,file\ncat/1.png,x\n", "column names must be distinct"),
    ("", "is empty"),
])
def test_a_wrong_file_is_one_line_naming_it(tmp_path, text, words):
    with pytest.raises(DataError) as e:
        _read(tmp_path, text)
    message = str(e.value)
    assert "\n" not in message and e.value.exit_code == 2
    assert message.startswith("data.metadata: ") and "meta.csv" in message
    assert words in message


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="data.metadata: file not found: .*nope.csv"):
        read_table(tmp_path / "nope.csv")


def test_an_unknown_file_error_shows_the_expected_form(tmp_path):
    with pytest.raises(DataError, match="such as 'cat/1.png'"):
        _read(tmp_path, "file,camera\n/abs/cat/1.png,phone\n")


def test_semicolons_and_tabs_are_read_where_the_header_has_no_comma(tmp_path):
    for sep in (";", "\t"):
        meta = _read(tmp_path, f"file{sep}camera\ncat/1.png{sep}phone\n")
        assert meta.columns == ["camera"] and meta.rows == {"cat/1.png": ["phone"]}
    meta = _read(tmp_path, "file,note\ncat/1.png,a;b\n")  # a comma header keeps its commas
    assert meta.rows == {"cat/1.png": ["a;b"]}
