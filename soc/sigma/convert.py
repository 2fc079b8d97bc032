"""Sigma rules -> Elasticsearch queries with pySigma's Elasticsearch backend (``soc rules convert``).

Our own backend evaluates rules on Polars frames; this one gives the same rules to analysts who hunt in
Kibana: Lucene query strings, ES|QL, or the query DSL with an embedded Lucene query. Field names follow the
chosen pySigma processing pipeline (``ecs_windows`` maps Sysmon/Security fields to ECS, ...); without one the
rule's field names are kept (our own rules already use ECS names). Every rule that does not convert is
reported with pySigma's reason; one bad rule never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from soc import safe_yaml

TARGETS = {"lucene": ("LuceneBackend", "default"), "dsl": ("LuceneBackend", "dsl_lucene"),
           "esql": ("ESQLBackend", "default")}
PIPELINES = ("ecs_windows", "ecs_windows_old", "ecs_zeek_beats", "ecs_zeek_corelight", "ecs_kubernetes",
             "ecs_macos_esf")


@dataclass
class Converted:
    """The queries of the rules that converted, and the reason of each that did not."""

    queries: list[dict] = field(default_factory=list)  # {path, id, title, query}
    failures: list[dict] = field(default_factory=list)  # {path, id, title, reason}


def backend(target: str, pipeline: str | None):
    """A pySigma Elasticsearch backend for ``target`` (see ``TARGETS``) with the named pipeline."""
    import sigma.backends.elasticsearch as backends

    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
    processing = None
    if pipeline:
        if pipeline not in PIPELINES:
            raise ValueError(f"unknown pipeline {pipeline!r} (one of {', '.join(PIPELINES)})")
        import sigma.pipelines.elasticsearch as pipelines

        processing = getattr(pipelines, pipeline)()
    return getattr(backends, TARGETS[target][0])(processing)


def convert(paths: list[str | Path], target: str = "lucene", pipeline: str | None = None) -> Converted:
    """Convert every rule of the files under ``paths`` (files, folders, globs)."""
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError

    from soc.sigma.loader import rule_files
    from soc.sigma.modifiers import register

    register()
    engine = backend(target, pipeline)
    fmt = TARGETS[target][1]
    out = Converted()
    for path in rule_files(list(paths)):
        try:
            docs = safe_yaml.load_all(path.read_text(encoding="utf-8"))
            collection = SigmaCollection.from_dicts(docs, collect_errors=True)
            collection.resolve_rule_references()
        except (SigmaError, ValueError, UnicodeDecodeError, safe_yaml.YAMLError) as exc:
            out.failures.append({"path": str(path), "id": None, "title": None, "reason": str(exc)})
            continue
        for rule in collection.rules:
            who = {"path": str(path), "id": str(rule.id) if rule.id else None, "title": rule.title}
            if rule.errors:
                out.failures.append({**who, "reason": "; ".join(str(e) for e in rule.errors)})
                continue
            try:
                if isinstance(rule, SigmaCorrelationRule):
                    queries = engine.convert_correlation_rule(rule, fmt)
                else:
                    rule._output = True  # a correlation's base rule is a query of its own too
                    queries = engine.convert_rule(rule, fmt)
            except (SigmaError, NotImplementedError, ValueError, TypeError, KeyError) as exc:
                out.failures.append({**who, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            for query in queries or []:
                out.queries.append({**who, "query": query})
            if not queries:
                out.failures.append({**who, "reason": "the backend produced no query"})
    return out
