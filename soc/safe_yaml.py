"""YAML for rules, specs and settings: always the *safe* loader (no Python objects from untrusted text),
and libyaml's C implementation of it when PyYAML has one: ~15x faster than the pure-Python loader, which
made loading the SigmaHQ rule set and our parser specs the slowest step of a hunt's start."""

from __future__ import annotations

from typing import IO, Any

import yaml

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAMLError = yaml.YAMLError


def load(text: str | bytes | IO) -> Any:
    """One YAML document, safely."""
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a safe loader


def load_all(text: str | bytes | IO) -> list:
    """Every document of a multi-document YAML text, safely."""
    return list(yaml.load_all(text, Loader=Loader))  # noqa: S506 - a safe loader
