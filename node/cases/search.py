"""The case search index: what each case's messages name, kept beside the case (issue 13).

A search by identifier, provider, peer, state or date must not decode every stored body
on each request (10,000 cases make that seconds). So when :class:`CasesService` stores a
case it also stores, in the same transaction, one ``case_index`` row (peer, state, times)
and the case's ``case_terms``: every identifier its bodies name (by type, normalised) and
every custodian or provider name. Both tables are derived like ``cases``: when one of
them is new at start, every case is rebuilt, which fills them for cases stored before.

Terms are normalised so that one identifier written two ways is one term: case folded,
spaces trimmed; an IP address in its compressed form (RFC 5952); a phone number as its
digits with a leading ``+``. A search matches a term exactly or by prefix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from protocol.cases import Case, CaseState
from schemas._identifiers import IdentifierType

INDEX_DDL: Final = """
CREATE TABLE IF NOT EXISTS case_index (
    case_id TEXT PRIMARY KEY, peer TEXT NOT NULL, state TEXT NOT NULL,
    priority TEXT NOT NULL, opened_at TEXT NOT NULL, last_activity TEXT NOT NULL,
    preserved_until TEXT
);
CREATE INDEX IF NOT EXISTS case_index_activity ON case_index (last_activity);
CREATE INDEX IF NOT EXISTS case_index_peer ON case_index (peer, last_activity);
-- kind: an identifier type (IdentifierType) or 'custodian'; term: normalised.
CREATE TABLE IF NOT EXISTS case_terms (
    term TEXT NOT NULL, kind TEXT NOT NULL, case_id TEXT NOT NULL,
    PRIMARY KEY (term, kind, case_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS case_terms_case ON case_terms (case_id);
"""

CUSTODIAN: Final = "custodian"
#: Longest search text (a longer one is not an identifier this index holds).
MAX_TERM: Final = 256
#: Most results on one page.
PAGE_SIZE: Final = 50
#: States reached only at read time (``protocol.cases.effective_state``).
_HOLDING: Final = (CaseState.PRESERVED.value, CaseState.EXTENSION_REQUESTED.value)
_TOP: Final = "\U0010ffff"  # above every character: the end of a prefix range
_SPACE: Final = re.compile(r"\s+")
_PHONE_NOISE: Final = re.compile(r"[\s().\-/]")
# the field holding each identifier type's searchable value
_VALUE_FIELD: Final = {
    "account": "account",
    "email": "address",
    "phone": "number",
    "domain": "domain",
    "url": "url",
    "ip": "address",
    "imei": "imei",
    "imsi": "imsi",
    "crypto_address": "address",
    "other": "value",
}
_PROVIDER_FIELDS: Final = frozenset({"provider"})


def instant(when: datetime) -> str:
    """An instant as the index keeps it: UTC, fixed width, so text order is time order."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def normalise(kind: str, value: str) -> str:
    """The form a term is stored and searched in (see the module docstring)."""
    text = _SPACE.sub(" ", value.strip()).casefold()
    if kind == IdentifierType.IP.value:
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            return text
    if kind == IdentifierType.PHONE.value:
        digits = _PHONE_NOISE.sub("", text)
        return digits if digits.startswith("+") or not digits.startswith("00") else "+" + digits[2:]
    if kind == IdentifierType.DOMAIN.value:
        return text.rstrip(".")
    return text


def terms_of(bodies: Iterable[object]) -> set[tuple[str, str]]:
    """``(kind, term)`` of every identifier and custodian or provider the bodies name."""
    found: set[tuple[str, str]] = set()
    for body in bodies:
        for kind, value in _walk(body):
            term = normalise(kind, value)[:MAX_TERM]
            if term:
                found.add((kind, term))
                if kind == CUSTODIAN:  # "Example Telecom GmbH" is found by "telecom"
                    found.update((kind, w) for w in term.split(" ") if len(w) >= 3)
    return found


def _walk(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, msgspec.Struct):
        config = value.__struct_config__
        tag = config.tag if config.tag_field == "type" else None
        if isinstance(tag, str) and tag in _VALUE_FIELD:
            yield tag, str(getattr(value, _VALUE_FIELD[tag]))
            if tag == "account":  # the service is a provider too
                yield CUSTODIAN, str(getattr(value, "service", ""))
        if type(value).__name__ == "Custodian":
            yield CUSTODIAN, str(getattr(value, "name", ""))
        for name in value.__struct_fields__:
            item = getattr(value, name)
            if name in _PROVIDER_FIELDS and isinstance(item, str):
                yield CUSTODIAN, item
            else:
                yield from _walk(item)
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _walk(item)


def index_row(
    case: Case, peer: str, priority: str, opened_at: datetime, last_activity: datetime
) -> tuple[Any, ...]:
    """The ``case_index`` row of a case."""
    until = None if case.preserved_until is None else instant(case.preserved_until)
    return (
        case.case_id,
        peer,
        case.state.value,
        priority,
        instant(opened_at),
        instant(last_activity),
        until,
    )


@dataclass(frozen=True)
class Query:
    """One search; empty fields do not filter.

    Attributes:
        identifier: an identifier's value, matched exactly or as a prefix (normalised).
        id_type: restrict ``identifier`` to one :class:`IdentifierType`.
        custodian: a provider or custodian name (or one word of it), exact or prefix.
        peer: the other member's id.
        state: a case state, the read-time ``expired`` included.
        since, until: last activity in ``[since, until)``.
        page: 1-based page of :data:`PAGE_SIZE` results, most recent activity first.
    """

    identifier: str = ""
    id_type: str = ""
    custodian: str = ""
    peer: str = ""
    state: str = ""
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1

    @property
    def reads_content(self) -> bool:
        """True if it filters on what bodies say (not for a metadata-only reader)."""
        return bool(self.identifier or self.custodian)


def search_sql(
    q: Query, now: datetime, hashed: Callable[[str, str], str] | None = None
) -> tuple[str, list[Any]]:
    """The SQL (and arguments) of one page of ``q``: ``case_id`` rows, one more than a
    page so the caller knows whether a next page exists. Every filter uses an index.

    With ``hashed`` (PROTOCOL.md §18.2) the terms are keyed hashes: a text matches a term
    exactly, or a prefix of one that ends at a separator (``target@``, ``10.1.``)."""
    where: list[str] = []
    args: list[Any] = []
    for kinds, text in ((_id_kinds(q.id_type), q.identifier), ((CUSTODIAN,), q.custodian)):
        if not text:
            continue
        # each kind normalises the text its own way: one range per distinct form
        forms: dict[str, list[str]] = {}
        for kind in kinds:
            forms.setdefault(normalise(kind, text)[:MAX_TERM], []).append(kind)
        ranges = []
        if hashed is not None:
            keys = [hashed(kind, term) for term, of in forms.items() for kind in of]
            ranges.append(f"(term IN ({','.join('?' * len(keys))}))")
            args += keys
            forms = {}
        for term, of in forms.items():
            marks = ",".join("?" * len(of))
            ranges.append(f"(term >= ? AND term < ? AND kind IN ({marks}))")
            args += [term, term + _TOP, *of]
        sub = "SELECT case_id FROM case_terms WHERE " + " OR ".join(ranges)  # noqa: S608
        where.append(f"case_id IN ({sub})")
    if q.peer:
        where.append("peer = ?")
        args.append(q.peer)
    if q.state:
        where.append(_state_sql(q.state, args, instant(now)))
    if q.since is not None:
        where.append("last_activity >= ?")
        args.append(instant(q.since))
    if q.until is not None:
        where.append("last_activity < ?")
        args.append(instant(q.until))
    sql = "SELECT case_id FROM case_index"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY last_activity DESC, case_id LIMIT ? OFFSET ?"
    args += [PAGE_SIZE + 1, (q.page - 1) * PAGE_SIZE]
    return sql, args


def _id_kinds(id_type: str) -> tuple[str, ...]:
    return (id_type,) if id_type else tuple(t.value for t in IdentifierType)


def _state_sql(state: str, args: list[Any], now: str) -> str:
    if state == CaseState.EXPIRED.value:
        args += [*_HOLDING, now]
        return "(state = 'expired' OR (state IN (?, ?) AND preserved_until <= ?))"
    if state in _HOLDING:
        args += [state, now]
        return "(state = ? AND (preserved_until IS NULL OR preserved_until > ?))"
    args.append(state)
    return "state = ?"
