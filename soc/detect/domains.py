"""DNS names for the DNS detectors (``kernel: entropy`` with ``params.score: ngram``): the registrable domain
from the public suffix list, how random a label looks under a character trigram model of ordinary names,
the allowlisted suffixes (CDN, cloud, software update: ``detectors/dns_allowlist.txt``) and the resolvers
(a DNS server forwarding its clients' queries is not the client).

Shannon entropy alone called ``superantispyware`` or ``community-cdn-digitalocean-com`` random: they are long
and use many letters. A trigram model of real words knows them for ordinary text and still finds the
``nvlyffua``/``knpqxlxcwtlvgrdyhd`` of a DGA and the base32/hex labels of a tunnel.

A batch's distinct names go through a Polars prefilter (allowlisted suffixes, no label long enough to judge);
the rest get a Python verdict once per detector and name (kept across batches): DNS names repeat (53 k
queries of the shared Zeek capture have 1,651 distinct names). Measured worst case, 1 M queries of 100 k
distinct random names: 2.7 s CPU for both detectors.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

MODEL = Path(__file__).resolve().parent / "label_model.json"
REGISTERED = "dns.question.registered_domain"  # ECS: the registrable domain (public suffix + one label)
_RUNS = re.compile(r"[a-z]+")
_HEX = re.compile(r"^[0-9a-f]+$")
_ALNUM = re.compile(r"[^a-z0-9]+")  # what switches() ignores: hyphens, dots, other characters
_SWITCH = re.compile(r"[a-z](?=[0-9])|[0-9](?=[a-z])")
SEEN = 100_000  # names whose verdict a detector keeps across batches (then it starts anew)
CLIP = 8.0  # bits: one unseen trigram (an abbreviation: pdf, cdn, dns) costs at most this much


@lru_cache(maxsize=1)
def _model() -> tuple[dict[str, int], np.ndarray]:
    doc = json.loads(MODEL.read_text(encoding="utf-8"))
    k = len(doc["alphabet"])
    q = np.frombuffer(base64.b64decode(doc["bits"]), np.uint8).reshape(k, k, k)
    return {c: i for i, c in enumerate(doc["alphabet"])}, (q.astype(np.float64) / doc["quant"]).tolist()


def label_bits(label: str) -> float:
    """Bits per character of the letters of ``label`` under the trigram model (each run of letters scored
    with its two ends; digits, hyphens and other characters split runs; each step costs at most ``CLIP``).
    Ordinary words and Vietnamese names score ~2.5-4, random letters ~5-7. NaN without letters."""
    index, bits = _model()
    total, n = 0.0, 0
    for run in _RUNS.findall(label.lower()):
        a = b = 0
        for ch in run:
            c = index[ch]
            total += min(bits[a][b][c], CLIP)
            a, b = b, c
        total += min(bits[a][b][0], CLIP)
        n += len(run) + 1
    return total / n if n else float("nan")


def switches(label: str) -> int:
    """Changes between a letter and a digit along ``label``: random alphanumerics change often (``kz89iy97c7n7``),
    names rarely (``avatars2``, ``office365``, ``w3schools``)."""
    return len(_SWITCH.findall(_ALNUM.sub("", label.lower())))


def readable(label: str) -> str:
    """An internationalised label (``xn--`` punycode) as the letters it spells, folded to ASCII:
    ``xn--dchvcng-x0a0689dsha`` is ``dịchvụcông``, scored as ``dichvucong``. Punycode itself looks random
    (every Vietnamese IDN did); a label that does not decode is kept as it is."""
    if not label.startswith("xn--"):
        return label
    try:
        text = label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return label
    text = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def random_label(label: str, min_length: int, max_bits: float, min_switches: int) -> bool:
    """Whether a label looks machine-made: at least ``min_length`` characters and either its letters score at
    least ``max_bits`` per character, or it alternates letters and digits ``min_switches`` times, or it is a
    hex string with letters and digits of 16 characters or more (a hash)."""
    label = readable(label.lower())
    if len(label) < min_length:
        return False
    if switches(label) >= min_switches:
        return True
    if len(label) >= 16 and _HEX.match(label) and not label.isdigit() and any(c.isdigit() for c in label):
        return True
    bits = label_bits(label)
    return bits == bits and bits >= max_bits


@lru_cache(maxsize=1)
def _psl():
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()  # the list the package bundles: no network


@lru_cache(maxsize=65_536)
def split_name(name: str) -> tuple[str, str, str]:
    """``name`` -> (registrable domain, its label, the subdomain left of it), lower case, without a trailing
    dot, from the public suffix list with its private section (``githubusercontent.com``, ``ddns.net`` and
    ``github.io`` are suffixes: the customer's label under them is what a DGA varies). A name that is itself
    a public suffix gives ("", "", "")."""
    name = name.strip().lower().rstrip(".")
    reg = _psl().privatesuffix(name) if name else None
    if not reg:
        return "", "", ""
    label = reg.split(".", 1)[0]
    sub = name[: -len(reg) - 1] if len(name) > len(reg) else ""
    return reg, label, sub


def read_allowlist(path: str | Path) -> tuple[str, ...]:
    """Suffixes from an allowlist file: one per line, ``#`` starts a comment (the provider and why)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip().lower().strip(".")
        if entry:
            out.append(entry)
    return tuple(sorted(set(out)))


def allowed(name: str, suffixes: frozenset[str]) -> bool:
    """Whether ``name`` is one of ``suffixes`` or under one of them."""
    name = name.strip().lower().rstrip(".")
    while name:
        if name in suffixes:
            return True
        dot = name.find(".")
        if dot < 0:
            return False
        name = name[dot + 1:]
    return False


@dataclass(frozen=True)
class NameRule:
    """What makes one query suspicious, from a spec's params.

    ``part: registered`` (DGA): the label of the registrable domain is random. ``part: subdomain`` (tunnel):
    the random labels (of ``min_label`` characters or more) left of the registrable domain add up to
    ``min_length`` characters."""

    part: str = "registered"
    min_length: int = 8
    min_label: int = 8
    max_bits: float = 4.3
    min_switches: int = 3
    allow: frozenset[str] = frozenset()

    @classmethod
    def of(cls, spec) -> NameRule:
        part = str(spec.param("part", "registered"))
        if part not in ("registered", "subdomain"):
            raise ValueError(f"params.part {part!r}: expected registered or subdomain with score: ngram")
        allow: set[str] = set()
        files = spec.param("allowlist", [])
        for f in [files] if isinstance(files, str) else files:
            path = Path(f)
            if not path.is_absolute():  # beside the spec, else soc's own (a spec copied alone elsewhere)
                beside = Path(spec.path).parent / path if spec.path else None
                path = beside if beside is not None and beside.exists() else _detectors() / path
            allow.update(read_allowlist(path))
        return cls(part, int(spec.param("min_length", 8)), int(spec.param("min_label", 8)),
                   float(spec.param("max_bits", 4.3)), int(spec.param("min_switches", 3)), frozenset(allow))

    def suspicious(self, name: str | None) -> str | None:
        """The registrable domain of ``name`` when the query is suspicious, else None."""
        if not name or allowed(name, self.allow):
            return None
        reg, label, sub = split_name(name)
        if not reg:
            return None
        if self.part == "registered":
            hit = random_label(label, self.min_length, self.max_bits, self.min_switches)
        else:
            size = sum(len(x) for x in sub.split(".")
                       if random_label(x, self.min_label, self.max_bits, self.min_switches))
            hit = size >= self.min_length
        return reg if hit else None


    def candidates(self, names: pl.Series) -> pl.Series:
        """A Polars prefilter of distinct names (a Boolean per name) that ``suspicious`` may keep: not under an
        allowlisted suffix, and with a label long enough to be judged. Most names of real traffic end here,
        without a Python call each (``www.google.com``: no label of 7)."""
        text = names.cast(pl.String).str.to_lowercase().str.strip_chars_end(".")
        longest = self.min_length if self.part == "registered" else self.min_label
        ok = text.str.contains(f"[^.]{{{max(longest, 1)}}}").fill_null(False)
        if self.allow:
            listed = "|".join(re.escape(a) for a in sorted(self.allow))
            ok = ok & ~text.str.contains(f"(?:^|\\.)(?:{listed})$").fill_null(False)
        return ok


def _detectors() -> Path:
    from soc.content import content_dir

    return content_dir("detectors")


@dataclass
class NameScorer:
    """One DNS detector's state across a hunt: the servers each client queried (to learn the resolvers) and
    the rule that keeps suspicious queries. ``take`` is called on each prepared batch, ``finish`` once."""

    spec: object
    rule: NameRule
    server: str | None  # the column naming the queried server (destination.ip), None: no learning
    answered: str | None  # a column present when the server answered (dns.response_code): only those count
    min_clients: int  # a server queried by this many distinct clients is a resolver (0: never learned)
    known: tuple  # resolvers named in the spec (addresses or CIDRs)
    _pairs: list = field(default_factory=list)
    _seen: dict = field(default_factory=dict)  # name -> its registrable domain when suspicious, else None

    @classmethod
    def of(cls, spec) -> NameScorer:
        known = spec.param("resolvers", [])
        known = tuple(ipaddress.ip_network(str(k), strict=False) for k in ([known] if isinstance(known, str)
                                                                            else known))
        return cls(spec, NameRule.of(spec), spec.param("server", None), spec.param("answered", None),
                   int(spec.param("resolver_clients", 0)), known)

    def take(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The suspicious rows of a batch, with the registrable domain in ``dns.question.registered_domain``;
        the (server, client) pairs of every answered query are kept to learn the resolvers (a host that only
        received queries, e.g. from a scanner, is not one)."""
        key = self.spec.key[0]
        if self.server and self.min_clients and self.server in rows.columns:
            pairs = rows
            if self.answered:
                pairs = rows.filter(pl.col(self.answered).is_not_null()) if self.answered in rows.columns else \
                    rows.head(0)
            self._pairs.append(pairs.select(pl.col(self.server).cast(pl.String).alias("_server"),
                                            pl.col(key).cast(pl.String).alias("_client"))
                               .drop_nulls().unique())
            if len(self._pairs) >= 64:  # the same pairs come back batch after batch: keep them once
                self._pairs = [pl.concat(self._pairs).unique()]
        value = self.spec.value
        distinct = rows.get_column(value).cast(pl.String).unique().drop_nulls()
        distinct = distinct.filter(self.rule.candidates(distinct))
        seen = self._seen
        if len(seen) > SEEN:  # names judged in earlier batches: most come back; bounded
            seen.clear()
        regs = []
        for name in distinct.to_list():
            if name not in seen:
                seen[name] = self.rule.suspicious(name)
            regs.append(seen[name])
        table = pl.DataFrame({value: distinct, REGISTERED: pl.Series(regs, dtype=pl.String)}).drop_nulls()
        if not table.height:
            return rows.head(0).with_columns(pl.lit(None, pl.String).alias(REGISTERED))
        rows = rows.drop(REGISTERED, strict=False).with_columns(pl.col(value).cast(pl.String))
        rows = rows.join(table, on=value, how="inner", maintain_order="left")
        if self.rule.part == "registered":  # a DGA varies the registrable domain: count those, not names
            rows = rows.with_columns(pl.col(REGISTERED).alias(value))
        return rows

    def resolvers(self) -> set[str]:
        """Servers that answered queries of ``min_clients`` distinct clients or more."""
        if not self._pairs:
            return set()
        pairs = pl.concat(self._pairs).unique()
        busy = pairs.group_by("_server").agg(pl.len().alias("_n")).filter(pl.col("_n") >= self.min_clients)
        return set(busy.get_column("_server").to_list())

    def is_resolver(self, address: str | None) -> bool:
        if not address or not self.known:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.known)

    def finish(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The rows whose client is not a resolver (learned or named): a resolver's queries are its clients'.
        With ``min_per_domain``, only (client, registrable domain) pairs with that many distinct suspicious
        names over the hunt stay first (a gate; the count in a window is the kernel's).
        A resolver stays when within some window (windows of the spec's length, every half of it) it sent
        ``resolver_threshold`` or more distinct suspicious values: a client behind it is then likely infected
        (the sensor sees only the forwarded queries), and the hit names the resolver to look behind."""
        key = self.spec.key[0]
        per_domain = int(self.spec.param("min_per_domain", 0))
        if per_domain and rows.height:  # a tunnel's names are many under one domain, not one each under many
            rows = rows.filter(pl.col(self.spec.value).n_unique().over([key, REGISTERED]) >= per_domain)
        learned = self.resolvers()
        clients = rows.get_column(key).cast(pl.String).unique().drop_nulls().to_list()
        out = {c for c in clients if c in learned or self.is_resolver(c)}
        if not out:
            return rows
        keep = self.spec.param("resolver_threshold", 0)
        if keep:
            forwarded = rows.filter(pl.col(key).cast(pl.String).is_in(sorted(out)))
            out -= _busy(forwarded, key, self.spec.value, self.spec.window, float(keep))
        return rows.filter(~pl.col(key).cast(pl.String).is_in(sorted(out)))


def _busy(rows: pl.DataFrame, key: str, value: str, window: str, threshold: float) -> set[str]:
    """Keys with ``threshold`` or more distinct ``value`` in some window of length ``window`` (starting every
    half window): a gate, not the detector's own sliding count."""
    from soc.detect.specs import duration_us

    span = duration_us(window)
    if not rows.height:
        return set()
    counts = (rows.select(pl.col(key).cast(pl.String).alias("_k"), pl.col(value).cast(pl.String).alias("_v"),
                          pl.col("@timestamp").dt.epoch("us").alias("_t"))
              .with_columns(pl.int_ranges((pl.col("_t") - span) // (span // 2) + 1,
                                          pl.col("_t") // (span // 2) + 1).alias("_w"))
              .explode("_w").group_by("_k", "_w").agg(pl.col("_v").n_unique().alias("_n")))
    return set(counts.filter(pl.col("_n") >= threshold).get_column("_k").to_list())
