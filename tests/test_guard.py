"""The guard of every optional part: inside a build a failure is recorded and the build goes
on; outside one, and for user errors and interrupts, exceptions propagate."""

from __future__ import annotations

import errno

import pytest

from reportgen.errors import ConfigError
from reportgen.guard import Failure, collecting, one_line, optional_part


def test_a_failure_is_recorded_and_the_code_after_the_part_runs():
    ran = []
    with collecting() as failures:
        with optional_part("learned filters", "c1"):
            raise ValueError("layer 'c1' has no 2-D convolution kernel")
        ran.append("after")
        with optional_part("feature maps", "c1"):
            ran.append("feature maps")
    assert ran == ["after", "feature maps"]
    assert failures == [Failure("learned filters", "c1",
                                "ValueError: layer 'c1' has no 2-D convolution kernel")]
    assert failures[0].as_dict() == {"part": "learned filters", "layer": "c1",
                                     "error": "ValueError: layer 'c1' has no 2-D convolution "
                                              "kernel"}
    assert failures[0].line() == ("learned filters of layer 'c1' failed: ValueError: layer "
                                  "'c1' has no 2-D convolution kernel")


def test_outside_a_build_the_exception_propagates():
    with pytest.raises(ValueError, match="boom"), optional_part("deep dream"):
        raise ValueError("boom")


@pytest.mark.parametrize("error", [ConfigError("explain.layer: no such layer"),
                                   KeyboardInterrupt(), SystemExit(3)])
def test_user_errors_and_interrupts_are_never_swallowed(error):
    with collecting() as failures, pytest.raises(type(error)):
        with optional_part("filter patterns", "c1"):
            raise error
    assert failures == []


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS])
def test_a_full_disk_is_the_machines_error_and_ends_the_build(number):
    with collecting() as failures, pytest.raises(OSError) as raised:
        with optional_part("figure confusion_test"):
            raise OSError(number, "no room")
    assert raised.value.errno == number and failures == []


def test_other_os_errors_are_the_parts():
    with collecting() as failures:
        with optional_part("image img/a.png"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
    assert [f.part for f in failures] == ["image img/a.png"]


def test_the_layer_can_be_named_inside_the_part_and_the_handle_holds_the_failure():
    with collecting() as failures:
        with optional_part("receptive fields") as part:
            part.layer = "block3"
            raise RuntimeError("upsampling layers are not supported")
    assert failures == [Failure("receptive fields", "block3",
                                "RuntimeError: upsampling layers are not supported")]
    assert part.failure is failures[0]
    with collecting(), optional_part("feature maps") as ok:
        pass
    assert ok.failure is None


def test_nested_collections_record_into_the_innermost():
    outer_list: list = []
    with collecting(outer_list):
        with collecting() as inner, optional_part("a"):
            raise ValueError("x")
        with optional_part("b"):
            raise ValueError("y")
    assert [f.part for f in inner] == ["a"] and [f.part for f in outer_list] == ["b"]


def test_the_reason_is_one_printable_line_of_bounded_length():
    tf_like = ValueError("cannot compute AddV2 as input #1(zero-based) was expected to be a "
                         "half tensor but is a float tensor [Op:AddV2] name: \n\n  stack:\n  a")
    assert one_line(tf_like) == ("ValueError: cannot compute AddV2 as input #1(zero-based) was "
                                 "expected to be a half tensor but is a float tensor "
                                 "[Op:AddV2] name:")
    assert one_line(KeyError()) == "KeyError"
    long = one_line(RuntimeError("x" * 1000))
    assert len(long) == 300 and long.endswith("…")
    assert one_line(ValueError("bad\x00name\u202e")) == "ValueError: bad name‹U+202E›"
