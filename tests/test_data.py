"""The dataset class, the corpus sources and the train/validation split."""

import json
import re
import time

import pytest
import torch

from charlm.data import (
    ALTERNATIVES,
    CharLMDataset,
    builtin_corpus,
    encode,
    load_corpus,
    load_hf_text,
    split_train_val,
)
from tests.notebook_reference import NotebookCharLMDataset

S = 5



def test_vocab_stoi_itos_are_the_homeworks():
    text = "hello, world! Hi."
    ours, ref = CharLMDataset(text, S), NotebookCharLMDataset(text, S)
    assert ours.vocab == ref.vocab == sorted(set(text))
    assert ours.stoi == ref.stoi
    assert ours.itos == ref.itos


def test_items_are_the_notebooks_chunks_and_all_full_length():
    # The notebook keeps N' = N - N % (S + 1) ids and counts N' // S chunks of S + 1; its last
    # chunk is short whenever S divides N'. Here N' = 30 = 5 * (S + 1) = 6 * S.
    text = "".join(chr(97 + i % 26) for i in range(30))
    ours, ref = CharLMDataset(text, S), NotebookCharLMDataset(text, S)
    assert len(ref) == 30 // S
    assert len(ref[len(ref) - 1][0]) < S  # the notebook admits a short last chunk
    assert len(ours) == (30 - 1) // S == len(ref) - 1
    for i in range(len(ours)):
        x, y = ours[i]
        assert x.shape == y.shape == (S,)
        rx, ry = ref[i]
        assert torch.equal(x, rx) and torch.equal(y, ry)
        assert torch.equal(x[1:], y[:-1])  # y is x shifted by one character
    with pytest.raises(IndexError):
        ours[len(ours)]


@pytest.mark.parametrize("n", range(6, 40))
def test_every_item_is_full_length_for_any_text_length(n):
    ds = CharLMDataset("ab" * n, S)
    kept = 2 * n - (2 * n) % (S + 1)
    assert len(ds) == max(0, (kept - 1) // S)
    for i in range(len(ds)):
        assert all(t.shape == (S,) for t in ds[i])


def test_batch_stacks_items():
    ds = CharLMDataset(builtin_corpus(0, n_chars=2000), S)
    idx = torch.tensor([0, 7, 3])
    x, y = ds.batch(idx)
    assert x.shape == y.shape == (3, S)
    for row, i in enumerate(idx.tolist()):
        assert torch.equal(x[row], ds[i][0]) and torch.equal(y[row], ds[i][1])


def test_shared_vocab_encodes_a_split_with_the_same_ids():
    text = "abcabcxyz"
    ds = CharLMDataset("abc" * 3, 2, vocab=sorted(set(text)))
    assert ds.stoi["x"] == 3
    with pytest.raises(ValueError, match="'x'"):
        CharLMDataset(text, 2, vocab=["a", "b", "c"])


def test_encode_names_missing_characters():
    with pytest.raises(ValueError, match=r"'Z', '€'"):
        encode("aZb€", {"a": 0, "b": 1})


def test_builtin_corpus_is_a_function_of_the_seed():
    a = builtin_corpus(seed=3, n_chars=50_000)
    assert a == builtin_corpus(seed=3, n_chars=50_000)
    assert a != builtin_corpus(seed=4, n_chars=50_000)
    assert len(a) == 50_000
    assert builtin_corpus(seed=3, n_chars=1000) == a[:1000]


def test_builtin_corpus_has_stories_with_names_and_dialogue():
    text = builtin_corpus(seed=0, n_chars=200_000)
    # paragraphs are separated by "\n\n" and stories by a single "\n", as the homework joins them
    stories = re.split(r"(?<!\n)\n(?!\n)", text)
    words = [len(s.split()) for s in stories[:-1]]
    assert min(words) >= 100 and sum(words) / len(words) >= 200
    assert text.count('"') >= 2 * len(stories) and text.count('"') % 2 == 0
    assert "Lily" in text and "Tim" in text
    assert len(set(text)) < 80 and text.isascii()


def test_builtin_default_corpus_is_large_and_varied():
    text = load_corpus()
    assert len(text) == 2_000_000
    # over 10,000 distinct sentences, and several times more distinct 20-character windows
    # than the 2000 steps x 32 sequences a homework run sees
    assert len(set(re.split(r'[.!?"]\s*', text))) > 10_000
    assert len({text[i : i + 20] for i in range(len(text) - 20)}) > 4 * 2000 * 32


def test_text_file_and_folder(tmp_path):
    (tmp_path / "b.txt").write_text("second é", encoding="utf-8")
    (tmp_path / "a.txt").write_text("first", encoding="utf-8")
    (tmp_path / "skip.md").write_text("not read", encoding="utf-8")
    assert load_corpus(str(tmp_path / "b.txt")) == "second é"
    assert load_corpus(str(tmp_path)) == "first\nsecond é"
    assert load_corpus(str(tmp_path), n_chars=3) == "fir"


def test_bad_utf8_byte_names_file_and_offset(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("héllo".encode() + b"\xff rest")
    with pytest.raises(ValueError,
                       match=r"bad\.txt: not valid UTF-8 at byte offset 6 \(byte 0xff\)"):
        load_corpus(str(path))


def test_a_byte_order_mark_is_not_a_character(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\xef\xbb\xbfab")  # UTF-8 BOM, as Notepad writes it
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfcd")
    assert load_corpus(str(tmp_path / "a.txt")) == "ab"
    assert load_corpus(str(tmp_path)) == "ab\ncd"
    assert CharLMDataset(load_corpus(str(tmp_path)), 2).vocab == ["\n", "a", "b", "c", "d"]
    # a BOM inside the text is a character like any other (U+FEFF, zero-width no-break space)
    (tmp_path / "c.txt").write_bytes(b"x\xef\xbb\xbfy")
    assert load_corpus(str(tmp_path / "c.txt")) == "x\ufeffy"


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="builtin"):
        load_corpus(str(tmp_path / "nope.txt"))
    with pytest.raises(ValueError, match="no \\*.txt files"):
        load_corpus(str(tmp_path))


def test_split_holds_out_the_tail():
    text = "x" * 90 + "y" * 10
    train, val = split_train_val(text, 0.1)
    assert (train, val) == ("x" * 90, "y" * 10)
    for bad in (0, 1, -0.5):
        with pytest.raises(ValueError, match="val_fraction"):
            split_train_val(text, bad)


# ------------------------------------------------------------------ Hugging Face loading, locally

ROWS = [{"text": "One day, Lily found a ball."}, {"text": "Tim said, \"Hi!\""},
        {"text": "The end."}]


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "stories.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    return path


def test_hf_json_file_gives_first_n_characters_of_joined_rows(jsonl, tmp_path):
    pytest.importorskip("datasets", reason="hf: sources need the optional datasets package")
    joined = "\n".join(r["text"] for r in ROWS)
    cache = str(tmp_path / "cache")
    assert load_hf_text(str(jsonl), n_chars=10_000, cache_dir=cache) == joined
    assert load_hf_text(str(jsonl), n_chars=30, cache_dir=cache) == joined[:30]
    assert load_corpus(f"hf:{jsonl}", n_chars=30, cache_dir=cache) == joined[:30]


def test_hf_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets", reason="needs the optional datasets package")
    path = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(path))
    assert load_corpus(f"hf:{path}", n_chars=12) == ROWS[0]["text"][:12]


def test_hub_dataset_not_cached_and_unreachable_fails_fast(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="needs the optional datasets package")
    # a closed local port stands in for the Hub: no network is used
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", "http://127.0.0.1:9")
    start = time.perf_counter()
    with pytest.raises(ValueError) as err:
        load_hf_text("roneneldan/TinyStories", cache_dir=str(tmp_path), probe_timeout=2)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "not in the local Hugging Face cache" in message and ALTERNATIVES in message


def test_hf_source_without_the_datasets_package_says_what_to_do(jsonl, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    with pytest.raises(ValueError) as err:
        load_corpus(f"hf:{jsonl}")
    assert "needs the `datasets` package" in str(err.value) and ALTERNATIVES in str(err.value)
