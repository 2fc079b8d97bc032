"""Push a STIX bundle to a collection of a TAXII 2.1 server (the national centre's) with ``taxii2-client``.

Credentials come from the environment (``SOC_TAXII_USER``, ``SOC_TAXII_PASSWORD``; ``SOC_TAXII_CA_CERTS`` for
a private CA), never from the command line, which shells keep in their history.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

_COLLECTION = re.compile(r"[A-Za-z0-9._~-]{1,128}")


class TaxiiError(RuntimeError):
    """The server could not be reached or did not take the objects."""


@dataclass
class PushReport:
    status: str
    success: int
    failure: int
    pending: int
    failures: list[dict] = field(default_factory=list)


def collection_url(api_root: str, collection: str) -> str:
    if not _COLLECTION.fullmatch(collection):
        raise TaxiiError(f"collection id {collection!r}: letters, digits and . _ ~ - only")
    return f"{api_root.rstrip('/')}/collections/{collection}/"


def push(bundle: str, api_root: str, collection: str, env: dict[str, str] | None = None,
         timeout: int = 60) -> PushReport:
    """Add the objects of ``bundle`` (STIX JSON text) to ``collection`` under ``api_root`` and wait for the
    server's status. An object the server holds already (same id and version) may count as a failure there."""
    import requests
    from taxii2client.exceptions import TAXIIServiceException
    from taxii2client.v21 import Collection

    env = os.environ if env is None else env
    envelope = json.dumps({"objects": json.loads(bundle)["objects"]}, ensure_ascii=False)
    try:
        target = Collection(collection_url(api_root, collection), user=env.get("SOC_TAXII_USER"),
                            password=env.get("SOC_TAXII_PASSWORD"), verify=env.get("SOC_TAXII_CA_CERTS") or True)
        status = target.add_objects(envelope, wait_for_completion=True, timeout=timeout)
    except (TAXIIServiceException, requests.RequestException, ValueError) as exc:
        from soc.config import redact

        raise TaxiiError(redact(f"TAXII push to {api_root} collection {collection}: {exc}", api_root)) from None
    return PushReport(status.status, status.success_count, status.failure_count, status.pending_count,
                      list(status.failures or []))
