"""The byte-level BPE tokenizer (turboquant_lab.tokenizer) on toy vocabularies."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from turboquant_lab.tokenizer import BPETokenizer, bytes_to_unicode, pretokenize

BASE = [bytes_to_unicode()[b] for b in range(256)]


def test_byte_alphabet_is_a_bijection_onto_printable_characters():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(ch.isprintable() and not ch.isspace() for ch in table.values())
    assert table[ord("A")] == "A" and table[32] == "Ġ"


def test_pretokenize_isolates_digits_and_keeps_leading_spaces():
    assert pretokenize("Mr. Bennet's 2024 wife") == ["Mr", ".", " Bennet", "'s", " ", "2", "0", "2", "4",
                                                     " wife"]
    assert pretokenize("in 2024", split_digits=False) == ["in", " 2024"]
    assert pretokenize("a  b\n\nc") == ["a", " ", " b", "\n", "\n", "c"]
    with pytest.raises(TypeError, match="str"):
        pretokenize(b"bytes")


def test_pretokenize_uses_unicode_letters_numbers_and_spaces():
    # \\p{L}, \\p{N} and \\s in the Unicode sense, as Hugging Face's tokenizers and llama.cpp
    # (these cases were checked against tokenizers' Digits + ByteLevel pre-tokenizer)
    assert pretokenize("Ελληνικά русский naïve") == ["Ελληνικά", " русский", " naïve"]
    assert pretokenize("½ Ⅻ ² ٣٤") == ["½", " ", "Ⅻ", " ", "²", " ", "٣", "٤"]
    assert pretokenize("½ Ⅻ", split_digits=False) == ["½", " Ⅻ"]
    assert pretokenize("a\xa0b  \u3000c") == ["a", "\xa0", "b", "  ", "\u3000", "c"]
    assert pretokenize("x—“y”") == ["x", "—“", "y", "”"]


@given(st.text(max_size=60))
def test_pretokenize_loses_nothing(text):
    assert "".join(pretokenize(text)) == text


def test_merges_are_applied_lowest_rank_first():
    vocab = BASE + ["ab", "bc", "abc"]
    # "b c" ranks first: a + bc, then "a bc" -> abc
    assert BPETokenizer(vocab, ["b c", "a bc", "a b"]).encode("abc").tolist() == [258]
    # "a b" ranks first: ab + c, and "ab c" is not a merge
    tok = BPETokenizer(vocab, ["a b", "b c", "a bc"])
    assert tok.encode("abc").tolist() == [256, ord("c")]
    assert tok.token_strings(tok.encode("abc")) == ["ab", "c"]


def test_merges_stay_inside_a_piece():
    tok = BPETokenizer(BASE + ["Ġa", "aĠ"], ["Ġ a", "a Ġ"])
    # " a" is one piece, "a " would cross a piece boundary (pieces are "a", " a")
    assert tok.token_strings(tok.encode("a a")) == ["a", " a"]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_decode_inverts_encode(text):
    tok = BPETokenizer(BASE + ["Ġt", "he", "Ġthe"], ["Ġ t", "h e", "Ġt he"])
    assert tok.decode(tok.encode(text)) == text


def test_special_tokens_are_dropped_unless_asked():
    tok = BPETokenizer(BASE + ["<|end|>"], [], special=[256])
    ids = np.array([ord("h"), ord("i"), 256])
    assert tok.decode(ids) == "hi"
    assert tok.decode(ids, skip_special=False) == "hi<|end|>"
    # a special token's text is spelled out, never recognised, by encode
    assert 256 not in tok.encode("<|end|>").tolist()


def test_clear_errors():
    with pytest.raises(ValueError, match="merges"):
        BPETokenizer(BASE, ["a b c"])
    with pytest.raises(ValueError, match="merges"):
        BPETokenizer(BASE, ["a b"])                       # "ab" is not in the vocabulary
    with pytest.raises(ValueError, match="empty"):
        BPETokenizer([], [])
    with pytest.raises(ValueError, match="byte-level"):
        BPETokenizer(["a", "b"], [])
    tok = BPETokenizer([s for s in BASE if s != bytes_to_unicode()[4]], [])
    with pytest.raises(ValueError, match="0x04"):
        tok.encode("a\x04b")
    with pytest.raises(ValueError, match="ids"):
        tok.decode([300])
