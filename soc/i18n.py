"""Vietnamese and English for soc's readers: gettext catalogs (``soc/locale/<lang>/LC_MESSAGES/soc.po``).

The ``.po`` files are read at run time with Babel and turned into gettext translations in memory (no ``.mo`` to
build or ship: the wheel carries the ``.po`` text; reading soc's catalog takes a few milliseconds). The message
ids are the English text, so the English catalog may leave ``msgstr`` empty. The language: ``--lang``, else
``SOC_LANG``, else the locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``vi*`` -> Vietnamese), else English.
``tests/test_report.py`` fails when a message id of the code or templates has no Vietnamese translation.
"""

from __future__ import annotations

import functools
import gettext
import io
import os
from pathlib import Path

LANGS = ("vi", "en")
DOMAIN = "soc"
LOCALE_DIR = Path(__file__).with_name("locale")


def resolve_lang(lang: str | None = None, env: dict[str, str] | None = None) -> str:
    """The reader's language: ``lang`` if given, else ``SOC_LANG``, else the locale's, else ``en``."""
    env = os.environ if env is None else env
    for value in (lang, env.get("SOC_LANG")):
        if value:
            short = value.strip().lower()[:2]
            if short not in LANGS:
                raise ValueError(f"unknown language {value!r} (use one of: {', '.join(LANGS)})")
            return short
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:  # the first one set decides, as for the C library
            return "vi" if value.lower().startswith("vi") else "en"
    return "en"


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """``lang``'s catalog as gettext translations (compiled in memory from the ``.po``)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = po_path(lang)
    if not path.exists():
        return gettext.NullTranslations()
    with open(path, "rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def gettext_for(lang: str):
    """The ``_`` of ``lang``."""
    return translations(lang).gettext


def N_(message: str) -> str:  # noqa: N802  (the gettext convention: marks a message to translate later)
    """Marks ``message`` for extraction; translated where it is shown."""
    return message


def extract(root: Path | None = None) -> dict[str, tuple[str, int]]:
    """Every message id in soc's code (``_``, ``N_``, ``ngettext``) and report templates, with where it is
    first seen (Babel's extractors; the templates' with Jinja2's). What the catalogs must translate."""
    from babel.messages.extract import extract_from_dir

    root = root or Path(__file__).parent
    method_map = [("**/templates/**.j2", "jinja2.ext:babel_extract"), ("**.py", "python")]
    options = {"**/templates/**.j2": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true",
                                      "lstrip_blocks": "true"}}
    found: dict[str, tuple[str, int]] = {}
    for path, line, message, _comments, _context in extract_from_dir(
            str(root), method_map, options, keywords={"_": None, "N_": None, "ngettext": (1, 2)}):
        for msgid in (message if isinstance(message, tuple) else (message,)):
            if msgid:
                found.setdefault(msgid, (path, line))
    return found


def update_catalogs() -> dict[str, int]:
    """``python -m soc.i18n``: every catalog gets the ids of the code (new ones untranslated, gone ones dropped,
    translations kept); returns the untranslated ids per language (the English ids need none)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    found = extract()
    missing = {}
    for lang in LANGS:
        path = po_path(lang)
        old = {}
        if path.exists():
            with open(path, "rb") as fh:
                old = {m.id: m.string for m in read_po(fh, locale=lang) if m.id}
        catalog = Catalog(locale=lang, domain=DOMAIN, project="soc", version="0.1.0", fuzzy=False)
        for msgid in sorted(found):
            where, line = found[msgid]
            catalog.add(msgid, old.get(msgid, ""), locations=[(f"soc/{where}", line)])
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            write_po(fh, catalog, width=116, sort_output=True, include_lineno=False)  # less churn
        missing[lang] = sum(1 for m in catalog if m.id and not m.string)
    translations.cache_clear()
    return missing


# -- the command line's language (one per process: ``soc --lang``, else SOC_LANG, else the locale) ---------------

_cli_lang = "en"


def use(lang: str) -> None:
    """Makes ``lang`` the language of ``_`` and ``number`` (``soc``'s group sets it before any command runs)."""
    global _cli_lang
    _cli_lang = lang


def current() -> str:
    return _cli_lang


def _(message: str) -> str:
    """``message`` in the command line's language. English is the message id itself: no catalog is read, so
    English output stays what it was and costs nothing."""
    return message if _cli_lang == "en" else translations(_cli_lang).gettext(message)


def number(value: float, digits: int | None = None, group: bool = True) -> str:
    """A count (``digits`` None) or a measure in the reader's convention: English as Python's ``,`` grouping
    (1,234.5), Vietnamese with Babel's ``format_decimal`` (1.234,5)."""
    if _cli_lang == "en":
        sep = "," if group else ""
        return f"{value:{sep}}" if digits is None else f"{value:{sep}.{digits}f}"
    from babel.numbers import format_decimal

    pattern = None if digits is None else ("#,##0" if group else "0") + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=_cli_lang)


if __name__ == "__main__":
    print(update_catalogs())
