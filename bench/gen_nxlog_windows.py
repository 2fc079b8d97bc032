"""Generator of Windows events as flat NXLog JSON lines (``im_msvistalog`` + ``to_json()``) for the large-input
hunt of ``bench_hunt``: the records of the EVTX corpus of issue 18 (483 files, ~10 k records), drawn at random
and written with varied values (time, record number, host, process ids, logon ids, GUIDs), so that a million
lines are not a million copies of ten thousand.

Flat NXLog lines rather than Winlogbeat's nested ones: Zircolite flattens nested JSON to the last key of each
path, so Winlogbeat's ``winlog.event_id`` becomes ``event_id`` and no rule's ``EventID`` condition would hold;
NXLog's top-level ``EventID``, ``Channel`` and EventData names are the fields of its EVTX path (only the
provider differs: NXLog's ``SourceName`` where its EVTX path has ``Provider_Name``).

Lines are drawn per block of ``BLOCK`` from a generator seeded by (seed, block), so the file of ``n`` lines is
the first ``n`` lines of any longer one (the peer can be timed on a prefix of soc's file).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
ROOTS = (CORPORA / "evtx" / "evtx-to-mitre-attack", CORPORA / "sigma" / "regression_data")
BLOCK = 10_000
START = np.datetime64("2026-11-20T00:00:00", "ms")
STEP_MS = 86  # a million events over about a day
HOSTS = 200
GUIDS = {"ProcessGuid", "ParentProcessGuid", "LogonGuid", "SourceProcessGUID", "TargetProcessGUID",
         "SourceProcessGuid", "TargetProcessGuid"}
PIDS = {"ProcessId", "ParentProcessId", "NewProcessId", "SourceProcessId", "TargetProcessId", "SourcePort", "IpPort"}
LOGON_IDS = {"LogonId", "TargetLogonId", "SubjectLogonId"}
SEVERITY = {1: (5, "CRITICAL"), 2: (4, "ERROR"), 3: (3, "WARNING")}  # EVTX Level -> NXLog; else 2, INFO
GUID = re.compile(r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?")


def evtx_files() -> list[Path]:
    """The corpus's ``.evtx`` files, sorted (those of ``tests/evtx_corpus.py``)."""
    return sorted(p for r in ROOTS for p in r.rglob("*.evtx"))


def _text(value) -> str | None:
    """An EVTX JSON value as NXLog writes it: text; an element with attributes by its text; a list one per line."""
    if isinstance(value, dict):
        value = value.get("#text")
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value if v is not None)
    if value is None or value == "":
        return None
    return str(value)


def _attr(node, *path):
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node


def nxlog_record(event: dict) -> dict | None:
    """One EVTX record (``evtx``'s JSON, ``{"Event": ...}``) as an NXLog object: its System fields under NXLog's
    names, then the EventData (or UserData) fields under their own names (they win a clash, as in NXLog)."""
    ev = event.get("Event") or {}
    system = ev.get("System") or {}
    event_id, channel = _text(system.get("EventID")), _text(system.get("Channel"))
    if event_id is None or channel is None:
        return None
    level = int(_text(system.get("Level")) or 4)
    severity, name = SEVERITY.get(level, (2, "INFO"))
    keywords = _text(system.get("Keywords"))
    out = {"EventTime": "", "Hostname": _text(system.get("Computer")) or "HOST", "EventType": "INFO",
           "SeverityValue": severity, "Severity": name, "EventID": int(event_id),
           "SourceName": _attr(system, "Provider", "#attributes", "Name")}
    if keywords and keywords.startswith("0x"):
        out["Keywords"] = int.from_bytes(int(keywords, 16).to_bytes(8, "big"), "big", signed=True)
    if guid := _attr(system, "Provider", "#attributes", "Guid"):
        out["ProviderGuid"] = guid if guid.startswith("{") else "{" + guid + "}"
    for key, value in (("Version", system.get("Version")), ("Task", system.get("Task")),
                       ("OpcodeValue", system.get("Opcode")), ("RecordNumber", system.get("EventRecordID")),
                       ("ExecutionProcessID", _attr(system, "Execution", "#attributes", "ProcessID")),
                       ("ExecutionThreadID", _attr(system, "Execution", "#attributes", "ThreadID"))):
        if (text := _text(value)) is not None and text.isdigit():
            out[key] = int(text)
    out["Channel"] = channel
    if user := _attr(system, "Security", "#attributes", "UserID"):
        out["UserID"] = user
    data = ev.get("EventData")
    if not isinstance(data, dict) and isinstance(ev.get("UserData"), dict):
        data = next((v for v in ev["UserData"].values() if isinstance(v, dict)), None)
    if isinstance(data, dict):
        for key, value in data.items():
            if not key.startswith("#") and (text := _text(value)) is not None:
                out[key] = text
    out.update(EventReceivedTime="", SourceModuleName="eventlog", SourceModuleType="im_msvistalog")
    return out


def corpus_records() -> list[dict]:
    """The corpus's records as NXLog objects, in file and record order (records ``evtx`` cannot read are left out)."""
    import evtx

    records = []
    for path in evtx_files():
        try:
            for rec in evtx.PyEvtxParser(str(path)).records_json():
                if (obj := nxlog_record(json.loads(rec["data"]))) is not None:
                    records.append(obj)
        except (OSError, RuntimeError, ValueError):  # a damaged file: keep what was read
            continue
    return records


def _guid(rng: np.random.Generator, like: str) -> str:
    h = "".join(f"{x:016X}" for x in rng.integers(0, 2**63, 2, dtype=np.int64)) + "0"
    text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    text = text.lower() if like.lower() == like else text
    return "{" + text + "}" if like.startswith("{") else text


def _varied(base: dict, i: int, stamp: str, ms: int, rng: np.random.Generator) -> dict:
    """``base`` as line ``i``: its own time and record number, a host of ``HOSTS``, fresh process and logon ids."""
    rec = dict(base)
    rec["EventTime"] = rec["EventReceivedTime"] = stamp
    rec["RecordNumber"] = i + 1
    host, _, domain = base["Hostname"].partition(".")
    rec["Hostname"] = f"{host}-{int(rng.integers(HOSTS)):03d}" + (f".{domain}" if domain else "")
    if "ExecutionProcessID" in rec:
        rec["ExecutionProcessID"] = int(rng.integers(1000, 65536)) & ~3
    if "UtcTime" in rec:
        rec["UtcTime"] = f"{stamp}.{ms:03d}"
    for key in GUIDS.intersection(rec):
        if GUID.fullmatch(rec[key]):
            rec[key] = _guid(rng, rec[key])
    for key in PIDS.intersection(rec):
        if rec[key].isdigit() and int(rec[key]) > 1000:  # small ids (4: System) are what rules look for
            rec[key] = str(int(rng.integers(1000, 65536)))
    for key in LOGON_IDS.intersection(rec):
        value = rec[key]
        if value.startswith("0x") and len(value) > 5:  # not 0x3e7 and its kind (the well-known sessions)
            rec[key] = hex(int(rng.integers(0x10000, 0xFFFFFFF)))
    return rec


def lines(records: list[dict], n_lines: int, seed: int = 0):
    """The ``n_lines`` JSON lines, block after block (a list of lines each)."""
    for first in range(0, n_lines, BLOCK):
        rng = np.random.default_rng((seed, first // BLOCK))
        pick = rng.integers(0, len(records), BLOCK)
        times = START + (first + np.arange(BLOCK, dtype=np.int64)) * STEP_MS
        stamps = np.datetime_as_string(times.astype("datetime64[s]"), unit="s")
        m = min(BLOCK, n_lines - first)
        yield [json.dumps(_varied(records[pick[k]], first + k, str(stamps[k]).replace("T", " "),
                                  int(times[k].astype(np.int64) % 1000), rng), separators=(",", ":")) + "\n"
               for k in range(m)]


def generate(path: str, n_lines: int, seed: int = 0) -> None:
    """Write ``n_lines`` NXLog JSON lines made from the corpus's records."""
    records = corpus_records()
    if not records:
        raise RuntimeError(f"no EVTX records under {', '.join(map(str, ROOTS))}")
    with open(path, "w", encoding="utf-8") as out:
        for block in lines(records, n_lines, seed):
            out.writelines(block)
