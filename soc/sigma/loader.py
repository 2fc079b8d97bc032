"""Loading Sigma rules: files, folders and globs -> our compiled rules, and every failure with its reason.

pySigma parses each file (``collect_errors``: one bad rule never hides the others); ``soc.sigma.ir`` turns
each rule into our tree; regexes are compiled once by Polars' (Rust, linear-time) engine so a rule it
cannot run is reported here, not in the middle of a hunt. Results are cached on disk per file and per load
(``soc.sigma.cache``): a warm load of SigmaHQ's 3,700 rules walks the folders, stats every file and reads
one JSON file, and leaves each rule's tree JSON text until a hunt reads it (``Rule.tree``). Nothing is
dropped silently: a file yields rules or errors naming file and reason.

Correlation rules (Sigma 2.0) go to ``soc.sigma.correlation.compile_correlations(paths, rules)`` when that
module provides it (it returns ``(correlations, errors)``); until then each is reported as an error. The load
cache keeps them as plain data (``Correlation.record``): a warm load imports no pySigma.
"""

from __future__ import annotations

import contextlib
import gc
import glob
import hashlib
import importlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from soc.sigma import ir
from soc.sigma.cache import LoadCache, RuleCache
from soc.sigma.mapping import Pipeline, Target, default_pipeline
from soc.sigma.modifiers import register as register_modifiers

SUFFIXES = (".yml", ".yaml")
LEVELS = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
_ATTACK_ID = re.compile(r"[tgs]\d{4}", re.IGNORECASE)  # techniques, groups, software
RISK = {"informational": 1, "low": 21, "medium": 47, "high": 73, "critical": 99}
_LAZY = ("title", "author", "level", "status", "tags", "tree")  # a cached rule's fields read when first asked for


@dataclass
class Rule:
    """One compiled Sigma rule: metadata for alerts and the detection tree."""

    id: str
    title: str
    author: str
    level: str
    status: str
    tags: list[str]
    logsource: list  # [product, category, service]
    tree: list
    path: str
    targets: list[Target] = field(default_factory=list, compare=False)

    @property
    def techniques(self) -> list[str]:
        """ATT&CK technique ids from the tags (``attack.t1059.001`` -> ``T1059.001``)."""
        return [t[7:].upper() for t in self.tags if t.lower().startswith("attack.t") and t[8:9].isdigit()]

    @property
    def tactics(self) -> list[str]:
        return [t[7:] for t in self.tags if t.lower().startswith("attack.") and not _ATTACK_ID.match(t[7:])]

    def record(self) -> dict:
        out = asdict(self)
        out.pop("targets")
        return out

    def line(self) -> str:
        """The rule's fields that a load reads lazily (``_LAZY``), as one line of JSON (see ``cached``), then,
        after a tab (JSON escapes those within strings), what a hunt needs of the rule before its tree
        (``soc.sigma.prefilter.needs``): a hunt decodes the trees of the rules it builds only."""
        from soc.sigma.prefilter import needs

        return (_encode([getattr(self, name) for name in _LAZY]) + "\t" + _encode(needs(self.tree)))

    def needs(self) -> list | None:
        """What the load cache keeps of ``soc.sigma.prefilter.needs(tree)`` (None: nothing kept)."""
        line = self.__dict__.get("_line")
        if line is None:
            return None
        _, tab, tail = line.partition(b"\t" if isinstance(line, bytes) else "\t")
        return _decode(tail) if tab else None

    @classmethod
    def cached(cls, rule_id: str, logsource: list, path: str, line: bytes | str) -> Rule:
        """A rule of the load cache: what routing needs now, the rest (``_LAZY``) JSON text until first read.
        A hunt reads the trees of the rules routed to the frames it meets and the metadata of those that
        matched; decoding all of SigmaHQ's took 40 ms."""
        rule = cls.__new__(cls)
        rule.__dict__.update(id=rule_id, logsource=logsource, path=path, targets=[], _line=line)
        return rule

    def __getattr__(self, name: str):
        line = self.__dict__.get("_line") if name in _LAZY else None
        if line is None:
            raise AttributeError(name)
        head = line.partition(b"\t" if isinstance(line, bytes) else "\t")[0]
        self.__dict__.update(zip(_LAZY, _decode(head), strict=True))  # two threads may both: the same values
        return self.__dict__[name]


def _encode(value) -> str:
    """``value`` as JSON text for ``_decode``: a leading space (JSON's whitespace) when orjson would not read it
    back as the standard reader does (an integer beyond 64 bits becomes a float there; NaN it refuses)."""
    text = json.dumps(value, separators=(",", ":"))
    try:
        same = json.dumps(orjson.loads(text), separators=(",", ":")) == text
    except orjson.JSONDecodeError:
        same = False
    return text if same else " " + text


def _decode(text: bytes | str):
    """JSON text of ``_encode`` as Python values: orjson, ~1.5-2x the standard reader (a hunt's first task
    decodes what ~2,000 routed rules need and the trees of those it builds: ~45 ms of CPU for rules/windows with
    the standard reader), or the standard reader for a text marked by its leading space."""
    return json.loads(text) if text[:1] in (b" ", " ") else orjson.loads(text)


@dataclass
class LoadError:
    """A rule (or file) that did not load, and why."""

    path: str
    reason: str
    rule_id: str | None = None
    title: str | None = None

    def __str__(self) -> str:
        who = f" rule {self.rule_id} ({self.title})" if self.rule_id else ""
        return f"{self.path}:{who} {self.reason}"


@dataclass
class RuleSet:
    """The loaded rules, the failures, and the correlation rules (compiled by ``soc.sigma.correlation``)."""

    rules: list[Rule]
    errors: list[LoadError]
    correlations: list = field(default_factory=list)
    files: int = 0

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


class RuleSourceError(ValueError):
    """A rules path that names nothing."""


def rule_files(paths: list[str | Path]) -> list[Path]:
    """Every rule file under ``paths`` (files, folders searched recursively, globs), resolved, sorted, unique."""
    return [Path(f) for f in _rule_files(paths)]


def _rule_files(paths: list[str | Path], folders: list[str] | None = None) -> list[str]:
    """``rule_files`` as strings, in the same order: ``Path`` order, by path component, which is the order of
    the strings with NUL (smaller than any character of a name) for the separator (6 ms faster than a
    ``split`` per path for SigmaHQ). ``folders``: given, it gets the paths given and every folder walked, if
    none of ``paths`` is a glob (``_same_folders``)."""
    found: set[str] = set()
    walked = [] if folders is not None else None
    for raw in paths:
        p = Path(raw)
        if walked is not None:
            walked.append(str(raw))
        if p.is_dir():
            _walk(os.path.realpath(p), found, walked)
        elif p.is_file():
            found.add(os.path.realpath(p))
        else:
            walked = None
            hits = [Path(h) for h in glob.glob(str(raw), recursive=True)]
            files = {os.path.realpath(h) for h in hits if h.is_file() and h.suffix in SUFFIXES}
            for h in hits:
                if h.is_dir():
                    _walk(os.path.realpath(h), files)
            if not files:
                from soc.i18n import _

                raise RuleSourceError(_("no Sigma rules at {path}").format(path=raw))
            found |= files
    if walked is not None:
        folders += walked
    return sorted(found, key=lambda f: f.replace(os.sep, "\0"))


def _walk(folder: str, found: set[str], walked: list[str] | None = None) -> None:
    """The rule files under a resolved ``folder``, as ``Path.rglob`` finds them (symbolic links to folders not
    followed, files of unreadable folders left out) but without hidden names: one ``scandir`` per folder,
    a path resolved only where it is a symbolic link (``Path.resolve`` per file took 0.2 s for SigmaHQ). Each
    folder walked is added to ``walked``."""
    folders = [folder]
    while folders:
        if walked is not None:
            walked.append(folders[-1])
        try:
            entries = os.scandir(folders.pop())
        except PermissionError:
            continue
        with entries:
            for entry in entries:
                if entry.name[0] == ".":
                    continue
                if entry.name.endswith(SUFFIXES) and entry.is_file():
                    found.add(os.path.realpath(entry.path) if entry.is_symlink() else entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)


def default_rule_paths() -> list[Path]:
    """soc's own rules: the rules/ folder without its pipeline/ (the mapping, not rules)."""
    from soc.content import content_dir

    folder = content_dir("rules")
    return [p for p in sorted(folder.iterdir()) if p.name != "pipeline" and not p.name.startswith(".")
            and (p.is_dir() or p.suffix in SUFFIXES)]


def known_unsupported() -> list[dict]:
    """Load failures that are expected, with why (rules/pipeline/known_unsupported.yml)."""
    from soc import safe_yaml  # here, as below: a hunt from the rule cache need not import PyYAML (~15 ms)
    from soc.content import content_dir

    path = content_dir("rules") / "pipeline" / "known_unsupported.yml"
    doc = safe_yaml.load(path.read_text(encoding="utf-8")) if path.exists() else None
    return [{"reason": str(e["reason"]), "why": str(e["why"])} for e in (doc or {}).get("known", [])]


def read_placeholders(path: str | Path | None) -> dict[str, list[str]]:
    """Values of ``%name%`` placeholders (``|expand``): a YAML mapping of name -> value or list."""
    if path is None:
        return {}
    from soc import safe_yaml

    doc = safe_yaml.load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(doc, dict):
        raise RuleSourceError(f"{path}: placeholders must be a mapping of name -> values")
    return {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in doc.items()}


def load(paths: list[str | Path], placeholders: dict[str, list[str]] | None = None, use_cache: bool = True,
         pipeline: Pipeline | None = None) -> RuleSet:
    """Load every rule under ``paths``; route each by its logsource (``Rule.targets``).

    The load cache (``soc.sigma.cache.LoadCache``) gives the rules, their event-id pins and the errors back
    while no rule file changed; else each file comes from the per-folder cache or is compiled anew."""
    placeholders = placeholders or {}
    with _no_collection():
        salt = _salt(placeholders)
        snapshot = LoadCache(salt, [os.path.abspath(p) for p in paths], enabled=use_cache)
        kept = snapshot.read()
        files = _same_folders(kept[0]) if kept is not None else None
        folders: list = []
        if files is None:
            files = _rule_files(paths, folders)
            folders = _stamps(folders)
        else:
            folders = kept[0]["folders"]
        stamps = _stamps(files)
        got = kept if kept is not None and kept[0].get("stamps") == stamps else None
        if got is not None:
            doc, lines = got
            rules = [Rule.cached(row[0], row[1], files[row[2]], line)
                     for row, line in zip(doc["rules"], lines, strict=True)]
            pins = [None if row[3] is None else set(row[3]) for row in doc["rules"]]
            errors = [LoadError(**e) for e in doc["errors"]]
            correlations, more = _cached_correlations(doc["correlations"], rules)
            route(rules, pipeline or default_pipeline(), pins)
            return RuleSet(rules, errors + more, correlations, len(files))
    rules, errors, correlation_files = _compile_files(files, placeholders, RuleCache(salt, enabled=use_cache))
    pins = [ir.pinned(rule.tree, "EventID") for rule in rules]
    correlations, more = _correlations(correlation_files, rules)
    if all(stamp[1] >= 0 for stamp in stamps):
        number = {f: i for i, f in enumerate(files)}
        snapshot.put(stamps, {
            "folders": folders if all(stamp[1] >= 0 for stamp in folders) else None,
            "rules": [[r.id, r.logsource, number[r.path], None if p is None else sorted(p)]
                      for r, p in zip(rules, pins, strict=True)],
            "errors": [asdict(e) for e in errors],
            "correlations": {"kept": [c.record() for c in correlations], "errors": [asdict(e) for e in more]}},
            [r.line() for r in rules])
    route(rules, pipeline or default_pipeline(), pins)
    return RuleSet(rules, errors + more, correlations, len(files))


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused (a warm load makes ~60 k objects and no garbage cycles): its first
    full pass of a process often fell in the load and walked every object of the imports (~25 ms of a 50-110 ms
    load); a caller that freezes the rules afterwards (``hunter_for``, ``soc.distributed.task``) never pays it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cached_correlations(doc: dict, rules: list[Rule]) -> tuple[list, list[LoadError]]:
    """The correlations of a cached load (``soc.sigma.correlation.Correlation.cached``: plain data, pySigma
    parses them only if they run) and their errors."""
    errors = [LoadError(**e) for e in doc["errors"]]
    if not doc["kept"]:
        return [], errors
    from soc.sigma.correlation import Correlation

    by_id = {r.id: r for r in rules}
    return [Correlation.cached(c, by_id) for c in doc["kept"]], errors


def _salt(placeholders: dict[str, list[str]]) -> str:
    """What the cached compile results depend on besides the rule files: soc's version, the tree version and
    the placeholder values."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:  # its METADATA's Version line, as ``importlib.metadata.version`` reads it but without the email
        # parser (importing it and parsing the headers: ~2 ms of every process's load)
        meta = distribution("soc").read_text("METADATA") or ""
        __version__ = next((line[9:].strip() for line in meta.splitlines() if line.startswith("Version: ")), None)
    except PackageNotFoundError:
        __version__ = "source"
    return hashlib.sha256(json.dumps([__version__, ir_version(), placeholders], sort_keys=True).encode()
                          ).hexdigest()[:16]


def _stamps(files: list[str]) -> list[list]:
    """[path, size, mtime_ns, ctime_ns] of each rule file or folder (-1s for one that cannot be read: never
    cached)."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append([f, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
        except OSError:
            out.append([f, -1, -1, -1])
    return out


def _same_folders(doc: dict) -> list[str] | None:
    """The rule files of a load file's load, if the paths it was given and every folder walked under them have
    the stamps it kept (None: walk them again). A file or folder added, removed or renamed in a folder changes
    the folder's mtime and ctime (its permissions, the ctime): stats of the ~530 folders of SigmaHQ instead of
    a ``scandir`` of each (1 ms instead of 7-14 ms CPU). An edited rule file changes its own stamp only, as
    ever checked by the caller."""
    folders = doc.get("folders")
    if not folders or _stamps([f[0] for f in folders]) != folders:
        return None
    return [stamp[0] for stamp in doc["stamps"]]


def _compile_files(files: list[str], placeholders: dict[str, list[str]], cache: RuleCache
                   ) -> tuple[list[Rule], list[LoadError], list[Path]]:
    """The rules (first of each id), errors and correlation rule files of ``files``, each file from the
    per-folder cache or compiled with pySigma."""
    rules: list[Rule] = []
    errors: list[LoadError] = []
    correlation_files: list[Path] = []
    for path in map(Path, files):
        entry = cache.get(path)
        if entry is None:
            entry = compile_file(path, placeholders)
            cache.put(path, entry)
        rules.extend(Rule(**r) for r in entry["rules"])
        errors.extend(LoadError(**e) for e in entry["errors"])
        if entry.get("correlations"):
            correlation_files.append(path)
    cache.save()
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen and seen[rule.id].path != rule.path:
            errors.append(LoadError(rule.path, f"duplicate rule id (also in {seen[rule.id].path})", rule.id,
                                    rule.title))
        seen.setdefault(rule.id, rule)
    return list(seen.values()), errors, correlation_files


def route(rules: list[Rule], pipeline: Pipeline, pins: list[set[int] | None] | None = None) -> None:
    """Give each rule its targets: the frames of its logsource, narrowed to the event ids it pins (``pins``:
    each rule's, when known; rules with the same logsource and pins share the work)."""
    done: dict[tuple, list] = {}
    for i, rule in enumerate(rules):
        pinned = ir.pinned(rule.tree, "EventID") if pins is None else pins[i]
        key = (tuple(rule.logsource), None if pinned is None else frozenset(pinned))
        if key not in done:
            done[key] = [t for target in pipeline.targets(key[0]) for t in target.pinned(pinned)]
        rule.targets = list(done[key])


def ir_version() -> int:
    """Bump when compiling gives other trees (the cache is keyed by it)."""
    return 3


def compile_file(path: Path, placeholders: dict[str, list[str]]) -> dict:
    """Parse one file with pySigma and compile its rules: ``{"rules": [...], "errors": [...]}``."""
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.rule import SigmaRule

    from soc import safe_yaml

    register_modifiers()
    out: dict = {"rules": [], "errors": [], "correlations": 0}
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        # references of correlation rules are resolved by soc.sigma.correlation, across files
        collection = SigmaCollection.from_dicts(safe_yaml.load_all(text), collect_errors=True, resolve_references=False)
    except Exception as exc:  # unreadable file, YAML error: reported, never raised
        out["errors"].append(asdict(LoadError(where, f"cannot parse: {type(exc).__name__}: {exc}")))
        return out
    for exc in collection.errors:
        if not any(exc in getattr(r, "errors", []) for r in collection.rules):
            out["errors"].append(asdict(LoadError(where, f"{type(exc).__name__}: {exc}")))
    for rule in collection.rules:
        rid = str(rule.id) if rule.id else None
        if rule.errors:
            reason = "; ".join(f"{type(e).__name__}: {e}" for e in rule.errors)
            out["errors"].append(asdict(LoadError(where, reason, rid, rule.title)))
            continue
        if isinstance(rule, SigmaCorrelationRule):
            out["correlations"] += 1
            continue
        if not isinstance(rule, SigmaRule):
            out["errors"].append(asdict(LoadError(where, f"unsupported rule type {type(rule).__name__}", rid,
                                                  rule.title)))
            continue
        try:
            out["rules"].append(compile_rule(rule, where, placeholders).record())
        except ir.Unsupported as exc:
            out["errors"].append(asdict(LoadError(where, str(exc), rid, rule.title)))
        except Exception as exc:  # a pySigma failure on one rule (condition error ...) stays with that rule
            out["errors"].append(asdict(LoadError(where, f"{type(exc).__name__}: {exc}", rid, rule.title)))
    return out


def compile_rule(rule, path: str, placeholders: dict[str, list[str]] | None = None) -> Rule:
    """Our ``Rule`` of one pySigma ``SigmaRule`` (raises ``ir.Unsupported`` with the reason)."""
    trees = [ir.from_condition(c.parsed, placeholders or {}) for c in rule.detection.parsed_condition]
    tree = ir.simplify(trees[0] if len(trees) == 1 else ["or", trees])
    check_regexes(tree)
    ls = rule.logsource
    return Rule(
        id=str(rule.id) if rule.id else f"{path}#{rule.title}",
        title=rule.title or "",
        author=rule.author or "",
        level=rule.level.name.lower() if rule.level else "medium",
        status=rule.status.name.lower() if rule.status else "",
        tags=[f"{t.namespace}.{t.name}" for t in rule.tags],
        logsource=[_lower(ls.product), _lower(ls.category), _lower(ls.service)],
        tree=tree,
        path=path,
    )


def _lower(value) -> str | None:
    return None if value is None else str(value).lower()


_REGEX_OK: dict[str, str | None] = {}


def regex_problem(pattern: str) -> str | None:
    """Why Polars' Rust regex engine cannot run ``pattern`` (None if it can)."""
    if pattern not in _REGEX_OK:
        import polars as pl

        try:
            pl.Series([""], dtype=pl.String).str.contains(pattern)
            _REGEX_OK[pattern] = None
        except Exception as exc:
            detail = " ".join(str(exc).split())
            _REGEX_OK[pattern] = detail[:300] or type(exc).__name__
    return _REGEX_OK[pattern]


def check_regexes(tree: list) -> None:
    """Raise ``ir.Unsupported`` if a regex of the tree cannot run on the linear-time engine."""
    problems: list[str] = []

    def visit(node: list) -> None:
        if node[0] == "re":
            pattern = (f"(?{node[3]})" if node[3] else "") + node[2]
            why = regex_problem(pattern)
            if why:
                problems.append(f"regex {node[2]!r}: {why}")
        elif node[0] == "str" and node[2] == "glob":
            why = regex_problem("(?s)^(?:" + "|".join(v.lower() for v in node[3]) + ")$")
            if why:
                problems.append(f"wildcard pattern: {why}")

    ir.walk(tree, visit)
    if problems:
        raise ir.Unsupported("regex not supported by the linear-time engine (no look-around or "
                             "backreferences): " + "; ".join(problems))


def _correlations(paths: list[Path], rules: list[Rule]) -> tuple[list, list[LoadError]]:
    """Hand the files holding correlation rules to ``soc.sigma.correlation`` (when it exists)."""
    if not paths:
        return [], []
    try:
        module = importlib.import_module("soc.sigma.correlation")
        compile_correlations = module.compile_correlations
    except (ImportError, AttributeError):
        return [], [LoadError(str(p), "correlation: handled by soc.sigma.correlation (not available)")
                    for p in paths]
    return compile_correlations(paths, rules)
