"""A byte-level BPE tokenizer (GPT-2 style), as SmolLM2 uses: text to token ids and back.

Byte-level BPE (Radford et al. 2019, the GPT-2 tokenizer; Sennrich et al. 2016
for BPE) works in three steps:

1. **Pre-tokenize.** A regular expression cuts the text into pieces (words with
   their leading space, runs of punctuation, runs of whitespace). SmolLM2 first
   isolates every digit (``"1813"`` becomes four pieces), then applies GPT-2's
   pattern to the rest: llama.cpp's ``smollm`` pre-tokenizer and Hugging Face's
   ``Sequence([Digits(individual_digits=True), ByteLevel()])``.
2. **Bytes to symbols.** Each piece's UTF-8 bytes are written with 256 printable
   characters (:func:`bytes_to_unicode`; a space becomes ``"Ġ"``), so every
   string, in any language, is spelled with a base alphabet the vocabulary holds.
3. **Merge.** The ranked merge list (``"Ġ t"``, ``"Ġ a"``, ``"i n"``, ...) is
   applied greedily: the adjacent pair of lowest rank is fused, again and again,
   until no pair of the piece is in the list. Each final symbol is a token.

Decoding joins the tokens' strings and maps the symbols back to bytes.

Everything comes from the model file's metadata (``tokenizer.ggml.tokens``,
``tokenizer.ggml.merges``); :func:`turboquant_lab.llm.load_smollm2` builds one.
"""
from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

import numpy as np

__all__ = ["BPETokenizer", "bytes_to_unicode", "pretokenize"]

# GPT-2's pattern, 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+,
# runs on a stand-in of the text in which every non-ASCII character is replaced by an ASCII
# one of its class (:func:`_stand_in`), so that the ASCII pattern below matches the same
# spans as the Unicode one (Python's ``re`` has no \p{L} or \p{N}); the pieces are then cut
# from the original text at those spans.
_ASCII_PATTERN = re.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+""", re.ASCII)
_DIGIT = re.compile(r"[0-9]")


@lru_cache(maxsize=65536)
def _stand_in(ch: str) -> str:
    """An ASCII character of the same class as the non-ASCII ``ch``: letter, number, space or other."""
    kind = unicodedata.category(ch)[0]
    if kind == "L":
        return "a"
    if kind == "N":
        return "0"
    if ch.isspace():    # the Unicode White_Space characters above ASCII (NBSP, U+2000.., U+3000)
        return "\t"
    return "!"


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict:
    """GPT-2's table from each of the 256 byte values to a printable character.

    Printable Latin-1 bytes (``!`` to ``~``, ``¡`` to ``¬``, ``®`` to ``ÿ``) stand
    for themselves; the other 68 (controls, space, ...) get ``chr(256 + k)``, so
    the space (byte 32) is ``"Ġ"`` and the newline (byte 10) is ``"Ċ"``.

    Examples
    --------
    >>> table = bytes_to_unicode()
    >>> len(set(table.values())), table[ord(" ")], table[ord("\\n")], table[ord("a")]
    (256, 'Ġ', 'Ċ', 'a')
    """
    keep = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
            + list(range(ord("®"), ord("ÿ") + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def pretokenize(text: str, split_digits: bool = True) -> list:
    """Cut ``text`` into the pieces that BPE merges within (step 1 above).

    The pieces of GPT-2's pattern ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+|
    ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`` (letters and numbers in the
    Unicode sense), after every number character is cut out on its own when
    ``split_digits``.

    Parameters
    ----------
    text : str
    split_digits : bool
        Cut out every number character (\\p{N}) first (SmolLM2 does; GPT-2 does not).

    Returns
    -------
    list of str
        Pieces whose concatenation is ``text``.

    Examples
    --------
    >>> pretokenize("It is a truth, in 1813.")
    ['It', ' is', ' a', ' truth', ',', ' in', ' ', '1', '8', '1', '3', '.']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    mapped = text if text.isascii() else "".join(c if c < "\x80" else _stand_in(c) for c in text)
    cuts = []          # (start, end, scan): a segment the pattern scans, or one number character
    start = 0
    if split_digits:
        for m in _DIGIT.finditer(mapped):
            if m.start() > start:
                cuts.append((start, m.start(), True))
            cuts.append((m.start(), m.end(), False))
            start = m.end()
    if start < len(mapped):
        cuts.append((start, len(mapped), True))
    pieces = []
    for a, b, scan in cuts:
        if not scan:
            pieces.append(text[a:b])
            continue
        pieces.extend(text[m.start():m.end()] for m in _ASCII_PATTERN.finditer(mapped, a, b))
    return pieces


class BPETokenizer:
    """Byte-level BPE encoder and decoder from a vocabulary and a ranked merge list.

    Parameters
    ----------
    tokens : sequence of str
        The vocabulary: ``tokens[i]`` is token ``i``'s string in the byte alphabet
        of :func:`bytes_to_unicode` (e.g. ``"Ġtruth"`` for ``" truth"``).
    merges : sequence of str
        ``"left right"`` pairs, most frequent (lowest rank) first.
    special : sequence of int, optional
        Ids of control tokens (``<|endoftext|>``, ``<|im_start|>``, ...). They
        are never produced by :meth:`encode` from text (their strings are spelled
        out as ordinary text) and are dropped by :meth:`decode` unless asked.
    split_digits : bool
        See :func:`pretokenize`.

    Attributes
    ----------
    vocab_size : int
    ids : dict
        Token string to id.

    Raises
    ------
    ValueError
        An empty vocabulary, a merge that is not two symbols, or a merge whose
        result is not in the vocabulary (the file is not a byte-level BPE);
        from :meth:`encode`, a byte the vocabulary cannot spell (SmolLM2's
        vocabulary lacks 21 control bytes such as ``\\x04``).

    Notes
    -----
    Encoding a piece of ``m`` symbols costs ``O(m^2)`` dictionary look-ups;
    pieces repeat in text, so each distinct piece is merged once and cached.

    Examples
    --------
    A toy vocabulary: the 256 byte symbols, then two merges.

    >>> base = [bytes_to_unicode()[b] for b in range(256)]
    >>> tok = BPETokenizer(base + ["Ġt", "Ġth"], ["Ġ t", "Ġt h"])
    >>> tok.encode(" the")
    array([257, 101])
    >>> tok.decode(tok.encode(" the"))
    ' the'
    """

    def __init__(self, tokens, merges, special=(), split_digits: bool = True):
        tokens = [str(t) for t in tokens]
        if not tokens:
            raise ValueError("tokens is empty: pass the model's vocabulary (tokenizer.ggml.tokens)")
        self.tokens = tokens
        self.ids = {t: i for i, t in enumerate(tokens)}
        self.ranks = {}
        for rank, merge in enumerate(merges):
            pair = tuple(str(merge).split(" "))
            if len(pair) != 2 or "".join(pair) not in self.ids:
                raise ValueError(f"merges[{rank}] = {merge!r} is not 'left right' with left+right in "
                                 f"the vocabulary: pass the model's own merges (tokenizer.ggml.merges)")
            self.ranks[pair] = rank
        self.special = frozenset(int(i) for i in special)
        self.split_digits = bool(split_digits)
        self._byte_symbol = bytes_to_unicode()
        self._symbol_byte = {s: b for b, s in self._byte_symbol.items()}
        if "Ġ" not in self.ids:
            raise ValueError("the vocabulary has no 'Ġ' (the space byte): it is not a byte-level "
                             "BPE vocabulary")
        self._cache = {}

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"BPETokenizer({self.vocab_size} tokens, {len(self.ranks)} merges)"

    def _bpe(self, piece: str) -> list:
        """Token ids of one pre-tokenized piece (step 2 and 3)."""
        hit = self._cache.get(piece)
        if hit is not None:
            return hit
        symbols = [self._byte_symbol[b] for b in piece.encode("utf-8")]
        while len(symbols) > 1:
            ranked = [(self.ranks.get(p, np.inf), i) for i, p in enumerate(itertools.pairwise(symbols))]
            rank, i = min(ranked)
            if rank == np.inf:
                break
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        try:
            out = [self.ids[s] for s in symbols]
        except KeyError:
            bad = [b for b in piece.encode("utf-8") if self._byte_symbol[b] not in self.ids]
            raise ValueError(f"the text holds byte {bad[0]:#04x} (in {piece!r}), which this vocabulary "
                             f"cannot spell (SmolLM2's lacks a few control characters): remove it "
                             f"from the text") from None
        if len(self._cache) < 100_000:
            self._cache[piece] = out
        return out

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``: ``(n,)`` int64 (no BOS is added: SmolLM2 adds none).

        Examples
        --------
        >>> base = [bytes_to_unicode()[b] for b in range(256)]
        >>> BPETokenizer(base, []).encode("hi")
        array([104, 105])
        """
        ids = [i for piece in pretokenize(text, self.split_digits) for i in self._bpe(piece)]
        return np.asarray(ids, dtype=np.int64)

    def decode(self, ids, skip_special: bool = True) -> str:
        """The text of token ids ``(n,)``; bytes that are not valid UTF-8 become U+FFFD.

        ``decode(encode(text)) == text`` for every string.
        """
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"ids must be integers in [0, {self.vocab_size}), got "
                             f"{ids.dtype} values from {ids.min()} to {ids.max()}")
        out = bytearray()
        for i in ids.tolist():
            if i in self.special:
                if not skip_special:
                    out += self.tokens[i].encode("utf-8")
                continue
            out += bytes(self._symbol_byte[s] for s in self.tokens[i])
        return out.decode("utf-8", errors="replace")

    def token_strings(self, ids) -> list:
        """Each id's text on its own (a space shows as a space), for labels and tables."""
        return [self.decode([i], skip_special=False) for i in np.asarray(ids).reshape(-1).tolist()]
