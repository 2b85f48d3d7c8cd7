"""Answer files a user hands to `charlm check-answers`: encodings, folders, binary files, and
one id written twice in two spellings."""

import pytest

from analysis.questions import key_lines, load_answers
from charlm.cli import main

DEPTH_ID = "transformer.layer.sequential_matmuls"


def _write(tmp_path, content, name="answers.toml"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _cli(path, capsys):
    code = main(["check-answers", str(path), "--grid", "quick", "--format", "csv"])
    return code, capsys.readouterr()


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, capsys):
    path = _write(tmp_path, b"\xef\xbb\xbf" + f'"{DEPTH_ID}" = "6"\n'.encode())
    assert load_answers(path) == {DEPTH_ID: "6"}
    code, out = _cli(path, capsys)
    assert code == 0 and "correct" in out.out


def test_a_binary_file_is_one_line_naming_it(tmp_path, capsys):
    path = _write(tmp_path, bytes([0x80, 0x00, 0xFF, 0x12]) * 50, "binary.bin")
    with pytest.raises(ValueError, match="binary.bin: not a UTF-8 text file"):
        load_answers(path)
    code, out = _cli(path, capsys)
    err = out.err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(path) in err


def test_a_folder_is_one_line_naming_it(tmp_path, capsys):
    folder = tmp_path / "answers.toml"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        load_answers(folder)
    code, out = _cli(folder, capsys)
    err = out.err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(folder) in err and "Errno" not in err


QUOTED_THEN_DOTTED = """# two spellings of one id
"transformer.forward.flops" = "1"
transformer.forward.flops = "24LTD^2 + 4LT^2D"
"""


@pytest.mark.parametrize("content,lines", [
    (QUOTED_THEN_DOTTED, (2, 3)),
    # the other order: the error must not depend on which comes last
    ('transformer.forward.flops = "24LTD^2 + 4LT^2D"\n\n"transformer.forward.flops" = "1"\n',
     (1, 3)),
    # a table header and a quoted key
    ('"transformer.forward.flops" = "1"\n[transformer.forward]\nflops = "2"\n', (1, 3)),
    # a quoted key inside a table, and an inline table
    ('[transformer]\n"forward.flops" = "1"\nforward = { flops = "2" }\n', (2, 3)),
    # a partly quoted table path
    ('["transformer.forward"]\nflops = "1"\n[transformer]\n"forward.flops" = "2"\n', (2, 4)),
])
def test_one_id_in_two_spellings_is_an_error_naming_both_lines(tmp_path, content, lines):
    path = _write(tmp_path, content)
    with pytest.raises(ValueError) as err:
        load_answers(path)
    message = str(err.value)
    assert "'transformer.forward.flops' is given twice" in message
    assert f"line {lines[0]} " in message and f"line {lines[1]} " in message


def test_a_duplicate_id_exits_2_with_one_line(tmp_path, capsys):
    code, out = _cli(_write(tmp_path, QUOTED_THEN_DOTTED), capsys)
    err = out.err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "given twice" in err and "line 2" in err and "line 3" in err


def test_distinct_ids_sharing_a_prefix_are_not_duplicates(tmp_path):
    path = _write(tmp_path, '"transformer.backward.flops" = "2"\n'
                            '[transformer.forward]\nflops = "1"\nsequential_matmuls = "6L"\n')
    assert set(load_answers(path)) == {"transformer.forward.flops",
                                       "transformer.forward.sequential_matmuls",
                                       "transformer.backward.flops"}


def test_key_lines_skips_strings_comments_and_arrays():
    text = ('# a = "not a key"\n'
            'a = "x = 1 # [b]"  # c = 2\n'
            'b = """\n'
            'd = 3\n'
            '"""\n'
            "e = ['[f]', 'g = 1',\n"
            '  "h"]\n'
            '"q\\"uoted.key" = 1\n'
            "'lit.key' = { inner = 2, deeper = { z = 3 } }\n"
            '[t]\n'
            'u.v = 4\n')
    assert key_lines(text) == {
        ("a",): 2, ("b",): 3, ("e",): 6, ('q"uoted.key',): 8, ("lit.key",): 9,
        ("lit.key", "inner"): 9, ("lit.key", "deeper"): 9, ("lit.key", "deeper", "z"): 9,
        ("t",): 10, ("t", "u", "v"): 11,
    }


def test_key_lines_never_evaluates_the_text(tmp_path, monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    path = _write(tmp_path, '"__import__(\'os\').system(\'x\')" = "1"\n'
                            '__import__.os = "2"\n'
                            '"__import__.os" = "3"\n')
    with pytest.raises(ValueError, match="given twice, line 2 .* line 3"):
        load_answers(path)
