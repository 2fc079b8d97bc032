"""Modifier names pySigma 1.5 lacks or encodes differently from the Sigma specification.

- ``utf16le``: the specification's name for ``wide`` (UTF-16LE); pySigma knows only ``wide``.
- ``utf16``: the specification prepends the byte-order mark, the bytes FF FE, to the UTF-16LE text. pySigma
  writes the mark as the character U+FEFF, which its ``base64`` modifiers then encode as UTF-8 (EF BB BF),
  so ``|utf16|base64offset`` would never match real data. Here the mark is carried as the two bytes (as
  surrogate escapes) and the base64 modifiers encode the value with ``surrogateescape``.

Registered once, before rules are parsed (``register``).
"""

# no "from __future__ import annotations": pySigma reads the modify() type hints at run time

from base64 import b64encode

_DONE = False
BOM = "\udcff\udcfe"  # the bytes FF FE, as surrogate escapes


def _bytes(value) -> bytes:
    return str(value).encode("utf-8", "surrogateescape")


def register() -> None:
    """Add our modifiers to pySigma's table (idempotent)."""
    global _DONE
    if _DONE:
        return
    from sigma import modifiers as M
    from sigma.exceptions import SigmaValueError
    from sigma.types import SigmaExpansion, SigmaString

    class UTF16(M.SigmaUTF16Modifier):
        """UTF-16LE with the byte-order mark FF FE."""

        def modify(self, val: SigmaString) -> SigmaString:
            out = super().modify(val)
            out.s = [BOM, *out.s[1:]] if out.s and out.s[0] == "\ufeff" else out.s
            return out

    class Base64(M.SigmaBase64Modifier):
        def modify(self, val: SigmaString) -> SigmaString:
            if val.contains_special():
                raise SigmaValueError("Base64 encoding of strings with wildcards is not allowed", source=self.source)
            return SigmaString(b64encode(_bytes(val)).decode())

    class Base64Offset(M.SigmaBase64OffsetModifier):
        def modify(self, val: SigmaString) -> SigmaExpansion:
            if val.contains_special():
                raise SigmaValueError("Base64 encoding of strings with wildcards is not allowed", source=self.source)
            raw = _bytes(val)
            return SigmaExpansion([
                SigmaString(b64encode(i * b" " + raw)[self.start_offsets[i]:self.end_offsets[(len(raw) + i) % 3]]
                            .decode())
                for i in range(3)
            ])

    for name, cls in (("utf16le", M.SigmaWideModifier), ("utf16", UTF16), ("base64", Base64),
                      ("base64offset", Base64Offset)):
        M.modifier_mapping[name] = cls
        M.reverse_modifier_mapping[cls.__name__] = name
    _DONE = True
