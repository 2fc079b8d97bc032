"""Configuration: a TOML file (``--config``, ``SOC_CONFIG`` or ``./soc.toml``) overlaid by ``SOC_*`` variables.

```toml
data_dir = "soc-data"            # SOC_DATA_DIR; created 0700, its files 0600 (soc.private)
[alerts]
window = "1h"                    # SOC_ALERT_WINDOW: hits of one rule on one entity within it make one alert
inventory = "assets.csv"         # SOC_INVENTORY: CSV or TOML asset inventory
policy = "my-policy.toml"        # SOC_POLICY: default, the shipped policy/vietnam.toml
[elasticsearch]
url = "https://es.soc.example:9200"   # SOC_ES_URL; no url: alerts stay in the embedded store only
api_key = "..."                  # SOC_ES_API_KEY (base64 "id:key" or the encoded form)
username = "soc"                 # SOC_ES_USERNAME
password = "..."                 # SOC_ES_PASSWORD
ca_certs = "/etc/soc/ca.pem"     # SOC_ES_CA_CERTS
verify_certs = true              # SOC_ES_VERIFY_CERTS: TLS verification is on unless turned off here
index_prefix = "soc-alerts"      # SOC_ES_INDEX_PREFIX: indices are <prefix>-YYYY.MM
[[jobs]]                         # a scheduled, incremental hunt (``soc jobs``); as many as wanted
name = "syslog"                  # letters, digits, . _ -; unique
inputs = ["/var/log/remote/*/auth.log*"]   # files, folders, globs (relative ones: from the working folder)
schedule = "*/5 * * * *"         # cron, read in tz; or every = "5m" (exactly one of the two)
tz = "Asia/Ho_Chi_Minh"          # zone of zone-less stamps and of the cron expression
format = "syslog"                # optional: the parser, instead of sniffing; year = 2026 for year-less stamps
rules = ["rules/"]               # optional: Sigma rules (default: soc's own); placeholders = "values.yml"
detectors = ["detectors/"]       # optional: detector specs (default: soc's own); false: none
settings = ["soc-ssh-brute-force.threshold=20"]   # optional detector overrides, as ``soc hunt --set``
elasticsearch = true             # optional: index the alerts (default: when a URL is configured)
```
Secrets are better kept in the environment than in the file. A password may also be given in the URL
(``http://elastic:PW@host:9200``): soc shows that URL as ``http://elastic:***@host:9200`` wherever it prints or
writes it (``redact``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import unquote

DEFAULT_FILE = "soc.toml"
# the user info of a URL: after "://", up to the last "@" of the host part (a password may hold an "@");
# one pass over the text, as each "://" starts at most one host part
_USER_INFO = re.compile(r"://([^/?#\s]*)@")


def redact(text: str, url: str | None = None) -> str:
    """``text`` with the password of every URL in it hidden (``http://elastic:***@host:9200``; a user info
    without ``:`` is all secret: ``http://***@host``). Whatever shows a URL (errors, reports, dead letters,
    ``--json``) goes through this: a password given in ``SOC_ES_URL`` is written nowhere. ``url``, the
    configured one, is hidden even where its password holds what a URL must escape (``/``, ``#``, a space: the
    pattern cannot tell where such a user info ends), and so is that password wherever it appears alone."""
    def hide(m: re.Match) -> str:
        user, colon, _ = m[1].partition(":")
        return f"://{user}:***@" if colon else "://***@"

    if url and "@" in url:
        head, _, host = url.rpartition("@")
        scheme, sep, info = head.rpartition("://") if "://" in head else ("", "", head)
        user, colon, password = info.partition(":")
        text = text.replace(url, f"{scheme}{sep}{user}:***@{host}" if colon else f"{scheme}{sep}***@{host}")
        for secret in {password if colon else info, unquote(password if colon else info)}:
            if len(secret) >= 4:  # shorter, it would be hidden in every word that holds it
                text = text.replace(secret, "***")
    return _USER_INFO.sub(hide, text)


class ConfigError(ValueError):
    """A configuration file or variable soc cannot use."""


@dataclass
class ESConfig:
    url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    index_prefix: str = "soc-alerts"
    replicas: int = 1
    timeout: float = 30.0
    chunk_size: int = 2000
    workers: int = 2  # bulk streams side by side
    max_retries: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0

    def __repr__(self) -> str:  # no secret in a traceback or a log: the URL's password and the keys are hidden
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return redact(f"ESConfig({shown})", self.url)


@dataclass
class AlertConfig:
    window: str = "1h"
    inventory: str | None = None
    policy: str | None = None


@dataclass
class JobConfig:
    """One ``[[jobs]]`` entry (``soc.jobs``): what a scheduled, incremental hunt reads, with what, and when."""

    name: str
    inputs: list[str]
    schedule: object  # soc.jobs.schedule.Schedule
    format: str | None = None
    tz: str = "Asia/Ho_Chi_Minh"
    year: int | None = None
    rules: list[str] = field(default_factory=list)  # empty: soc's own rules/
    placeholders: str | None = None
    detectors: list[str] | None = field(default_factory=list)  # empty: soc's own detectors/; None: no detectors
    settings: list[str] = field(default_factory=list)  # DETECTOR.PARAM=VALUE
    elasticsearch: bool | None = None  # None: when a URL is configured
    chunk_mb: int = 16
    ray: str | None = None  # hunt on this Ray cluster ("auto", "ray://host:10001"; ``soc hunt --ray``)


@dataclass
class Config:
    data_dir: str = "soc-data"
    alerts: AlertConfig = field(default_factory=AlertConfig)
    elasticsearch: ESConfig = field(default_factory=ESConfig)
    jobs: list[JobConfig] = field(default_factory=list)
    source: str | None = None  # the file read, if any

    def job(self, name: str) -> JobConfig:
        """The job named ``name``; ``ConfigError`` naming the known ones if there is none."""
        for job in self.jobs:
            if job.name == name:
                return job
        from soc.i18n import _

        known = ", ".join(j.name for j in self.jobs) or _("none")
        raise ConfigError(_("no job named {name} in {where} (jobs: {known})").format(
            name=repr(name), where=self.source or _("the configuration"), known=known))


_ENV = {
    "SOC_DATA_DIR": (None, "data_dir"),
    "SOC_ALERT_WINDOW": ("alerts", "window"),
    "SOC_INVENTORY": ("alerts", "inventory"),
    "SOC_POLICY": ("alerts", "policy"),
    "SOC_ES_URL": ("elasticsearch", "url"),
    "SOC_ES_API_KEY": ("elasticsearch", "api_key"),
    "SOC_ES_USERNAME": ("elasticsearch", "username"),
    "SOC_ES_PASSWORD": ("elasticsearch", "password"),
    "SOC_ES_CA_CERTS": ("elasticsearch", "ca_certs"),
    "SOC_ES_VERIFY_CERTS": ("elasticsearch", "verify_certs"),
    "SOC_ES_INDEX_PREFIX": ("elasticsearch", "index_prefix"),
    "SOC_ES_REPLICAS": ("elasticsearch", "replicas"),
    "SOC_ES_WORKERS": ("elasticsearch", "workers"),
}


def load_config(path: str | Path | None = None, env: dict[str, str] | None = None) -> Config:
    """The configuration from ``path`` (else ``SOC_CONFIG``, else ``./soc.toml`` if present) and ``env``."""
    env = os.environ if env is None else env
    cfg = Config()
    path = path or env.get("SOC_CONFIG") or (DEFAULT_FILE if Path(DEFAULT_FILE).is_file() else None)
    if path:
        import tomllib  # here: a hunt without a configuration file need not import it (~2.5 ms of CPU)

        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            from soc.i18n import _

            raise ConfigError(_("cannot read configuration {path}: {reason}").format(
                path=path, reason=exc.strerror or exc)) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"configuration {path}: {exc}") from None
        _apply(cfg, data, str(path))
        cfg.source = str(path)
    for var, (section, key) in _ENV.items():
        if env.get(var):
            target = getattr(cfg, section) if section else cfg
            _set(target, key, env[var], var)
    return cfg


def _apply(cfg: Config, data: dict, where: str) -> None:
    for key, value in data.items():
        if key in ("alerts", "elasticsearch"):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{key}] must be a table")
            for sub, val in value.items():
                _set(getattr(cfg, key), sub, val, f"{where}: {key}.{sub}")
        elif key == "data_dir":
            _set(cfg, key, value, f"{where}: {key}")
        elif key == "jobs":
            cfg.jobs = _jobs(value, where)
        else:
            raise ConfigError(_unknown(where, key, "data_dir, [alerts], [elasticsearch], [[jobs]]"))


_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_JOB_KEYS = ("name", "inputs", "schedule", "every", "format", "tz", "year", "rules", "placeholders", "detectors",
             "settings", "elasticsearch", "chunk_mb", "ray")


def _jobs(entries, where: str) -> list[JobConfig]:
    """The ``[[jobs]]`` array of tables, each checked (cron expression included) with the entry it is in."""
    from soc.jobs.schedule import Schedule, ScheduleError
    from soc.options import DEFAULT_ZONE

    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: jobs must be an array of tables ([[jobs]] entries)")
    jobs: list[JobConfig] = []
    for i, entry in enumerate(entries, 1):
        name = entry.get("name")
        at = f"{where}: [[jobs]] #{i}" + (f" ({name})" if isinstance(name, str) else "")
        unknown = sorted(set(entry) - set(_JOB_KEYS))
        if unknown:
            raise ConfigError(_unknown(at, unknown[0], ", ".join(_JOB_KEYS)))
        if not isinstance(name, str) or not _JOB_NAME.fullmatch(name):
            raise ConfigError(f"{at}: name must be 1-64 letters, digits, '.', '_' or '-' (it names a folder)")
        if any(j.name == name for j in jobs):
            raise ConfigError(f"{at}: a job named {name!r} is defined twice")
        tz = _typed(entry, "tz", str, at, DEFAULT_ZONE)
        try:
            schedule = Schedule.parse(entry.get("schedule"), entry.get("every"), tz)
        except ScheduleError as exc:
            raise ConfigError(f"{at}: {exc}") from None
        inputs = _paths(entry, "inputs", at)
        if not inputs:
            raise ConfigError(f"{at}: inputs must name at least one file, folder or glob")
        detectors = entry.get("detectors", [])
        if detectors is False:
            detectors = None
        elif detectors is not True:
            detectors = _paths(entry, "detectors", at)
        year = _typed(entry, "year", int, at)
        if year is not None and not 1970 <= year <= 2100:
            raise ConfigError(f"{at}: year = {year} is out of range")
        chunk_mb = _typed(entry, "chunk_mb", int, at, 16)
        if not 1 <= chunk_mb <= 1024:
            raise ConfigError(f"{at}: chunk_mb must be 1-1024")
        ray = _typed(entry, "ray", str, at)
        if ray is not None and not (ray == "auto" or ray.startswith("ray://") or
                                    (":" in ray and ray.rsplit(":", 1)[1].isdigit())):
            raise ConfigError(f"{at}: ray = {ray!r} is no Ray address (auto, ray://host:10001, host:6379)")
        jobs.append(JobConfig(
            name=name, inputs=inputs, schedule=schedule, format=_typed(entry, "format", str, at), tz=tz, year=year,
            rules=_paths(entry, "rules", at), placeholders=_typed(entry, "placeholders", str, at),
            detectors=[] if detectors is True else detectors, settings=_paths(entry, "settings", at),
            elasticsearch=_typed(entry, "elasticsearch", bool, at), chunk_mb=chunk_mb, ray=ray))
    return jobs


def _typed(entry: dict, key: str, kind: type, at: str, default=None):
    value = entry.get(key, default)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise ConfigError(f"{at}: {key} = {value!r} must be {'a' if kind is not int else 'an'} {kind.__name__}")
    return value


def _paths(entry: dict, key: str, at: str) -> list[str]:
    """A string or an array of strings, as a list."""
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{at}: {key} must be a string or an array of strings")
    return list(value)


def _unknown(where: str, key: str, known: str) -> str:
    from soc.i18n import _

    return _("{where}: unknown setting {key} (known: {known})").format(where=where, key=repr(key), known=known)


def _set(target, key: str, value, where: str) -> None:
    types = {f.name: f.type for f in fields(target)}
    if key not in types or key == "source":
        raise ConfigError(_unknown(where, key, ", ".join(k for k in types if k != "source")))
    kind = types[key]
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                value = value.lower() in ("1", "true", "yes", "on")
            value = bool(value)
        elif kind == "int":
            value = int(value)
        elif kind == "float":
            value = float(value)
        elif value is not None:
            value = str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a valid {kind}") from None
    setattr(target, key, value)
