"""Rebuild ``soc/detect/label_model.json``: the character trigram model of ordinary DNS labels that
``soc.detect.domains`` scores names with (bits per character: random-looking names score high).

Training text, all licence-clean and none of it DNS traffic (the shared Zeek capture is a test set, never
training data):
- English: the ``web2`` word list (Webster's Second International Dictionary, 1934, public domain; the copy
  FreeBSD ships as ``/usr/share/dict/web2``) as the PyPI package ``english-words`` (MIT) bundles it:
  ``pip install english-words``;
- domain labels: the labels of the public suffix list (ICANN and private sections: providers' and places'
  names such as ``blogspot``, ``cloudapp``, ``binhphuoc``; MPL-2.0) as the PyPI package ``publicsuffixlist``
  (a dependency of soc) bundles it;
- Vietnamese: syllables generated from the orthography (onsets x rhymes, tone marks and the letters
  ``đ ă â ê ô ơ ư`` folded to ASCII as in domain names), joined two or three at a time as names are
  (``dichvucong``, ``thanhhoa``, ``quangninh``).

Run: ``.venv/bin/python scripts/build_label_model.py`` (deterministic: the same packages give the same file).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "soc" / "detect" / "label_model.json"
ALPHABET = "^abcdefghijklmnopqrstuvwxyz"  # "^" marks both ends of a run of letters
PSL_WEIGHT = 15.0
QUANT = 8  # stored as round(-log2 p * QUANT) in one byte: 1/8 bit steps, at most 31.9 bits

ONSETS = ["", "b", "c", "ch", "d", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh", "nh", "p", "ph",
          "qu", "r", "s", "t", "th", "tr", "v", "x"]
# rhymes without tone marks, with a/ă/â, e/ê, o/ô/ơ, u/ư folded (as Vietnamese names are written in domains)
_RHYMES = ("a ac ach ai am an ang anh ao ap at au ay e ec em en eng eo ep et eu i ia ich iec iem ien iep iet ieu im "
          "in inh ip it iu o oa oac oach oai oan oang oanh oat oay oc oe oen oet oi om on ong oong op ot u ua uan "
          "uang uat uan uay uc ue uen uet ui um un ung uo uoc uoi uom uon uong uop uot uou up ut uu uy uya uyen "
          "uyet uynh uyt y yen yet yeu")
RHYMES = _RHYMES.split()
# letters an onset cannot take before some rhymes (c/k/g/gh/ng/ngh spelling rules), kept simple: c and g
# before e/i/y become k/gh, ng before e/i becomes ngh
_FRONT = ("e", "i", "y")


def syllables() -> list[str]:
    out = []
    for onset in ONSETS:
        for rhyme in RHYMES:
            front = rhyme.startswith(_FRONT)
            if (onset in ("c", "g", "ng") and front) or (onset in ("k", "gh", "ngh") and not front):
                continue
            if onset == "qu" and rhyme.startswith("u"):
                continue
            out.append(onset + rhyme)
    return sorted(set(out))


def english() -> list[str]:
    from english_words import get_english_words_set

    return sorted(w for w in get_english_words_set(["web2"], lower=True, alpha=True) if len(w) >= 2)


def suffix_labels() -> list[str]:
    """Runs of ASCII letters (3 or more) of the public suffix list's rules."""
    import re

    import publicsuffixlist

    dat = Path(publicsuffixlist.__file__).parent / "public_suffix_list.dat"
    out = set()
    for line in dat.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("//") and line.isascii():
            out.update(r for r in re.findall("[a-z]+", line.lower()) if len(r) >= 3)
    return sorted(out)


def vietnamese(n: int = 120_000, seed: int = 19) -> list[str]:
    rng = np.random.default_rng(seed)
    syl = syllables()
    sizes = rng.choice([1, 2, 2, 3], n)
    return ["".join(syl[i] for i in rng.integers(0, len(syl), k)) for k in sizes]


def counts(words: list[str]) -> np.ndarray:
    """Trigram counts over the alphabet, each word padded with two "^" before and one after."""
    index = {c: i for i, c in enumerate(ALPHABET)}
    grams: Counter = Counter()
    for w in words:
        s = [0, 0, *(index[c] for c in w), 0]
        grams.update(zip(s, s[1:], s[2:], strict=False))
    k = len(ALPHABET)
    table = np.zeros((k, k, k), np.float64)
    for (a, b, c), v in grams.items():
        table[a, b, c] = v
    return table


def model(table: np.ndarray, k3: float = 2.0, k2: float = 2.0) -> np.ndarray:
    """-log2 P(c | a b): trigram counts backed off (Dirichlet) to bigrams, bigrams to unigrams."""
    uni = table.sum(axis=(0, 1)) + 1.0
    uni /= uni.sum()
    bi = table.sum(axis=0)  # (b, c)
    p_bi = (bi + k2 * uni[None, :]) / (bi.sum(axis=1, keepdims=True) + k2)
    p = (table + k3 * p_bi[None, :, :]) / (table.sum(axis=2, keepdims=True) + k3)
    return -np.log2(p)


def main() -> None:
    from importlib.metadata import version

    en, vi, psl = english(), vietnamese(), suffix_labels()
    # Vietnamese weighs about a third: the web2 list is long but Vietnamese names are common in .vn; the
    # suffix list's labels (brands, providers, places: what domain names are made of) weigh as much again
    table = counts(en) + 0.6 * counts(vi) + PSL_WEIGHT * counts(psl)
    bits = model(table)
    q = np.clip(np.rint(bits * QUANT), 1, 255).astype(np.uint8)
    doc = {
        "format": 1,
        "alphabet": ALPHABET,
        "order": 3,
        "quant": QUANT,
        "bits": base64.b64encode(q.tobytes()).decode("ascii"),
        "sources": [
            {"what": f"English words ({len(en)}): web2 (Webster's Second International, 1934)",
             "licence": "public domain; read through the PyPI package english-words (MIT)",
             "package": f"english-words {version('english-words')}"},
            {"what": f"Domain labels ({len(psl)}) of the public suffix list, weight {PSL_WEIGHT}",
             "licence": "MPL-2.0; read from the PyPI package publicsuffixlist",
             "package": f"publicsuffixlist {version('publicsuffixlist')}"},
            {"what": f"Vietnamese syllables ({len(syllables())}) from the orthography, {len(vi)} names of 1-3",
             "licence": "generated by this script"},
        ],
        "built_by": "scripts/build_label_model.py",
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
