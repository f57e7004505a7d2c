"""JSON bodies of the relay's audit endpoints under /v1/audit/ (PROTOCOL.md §7.2).

Shared by the relay, which writes them, and the auditor and witnesses, which decode
them. Hashes travel as base64 (msgspec's encoding of ``bytes``), as in C2SP tlog-proof;
the leaf hash of an inclusion proof is hex so that it reads like the query that found it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.types import Sha256Hex

_Index = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_Size = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
_Hash = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
#: RFC 9162 proofs of a tree below 2**64 leaves have at most 64 (inclusion) or 128 hashes.
_Proof = Annotated[tuple[_Hash, ...], msgspec.Meta(max_length=128)]
#: Entries per page of ``GET /v1/audit/entries``.
MAX_ENTRIES_PAGE = 1000
#: A checkpoint note with up to 100 signature lines stays far below this.
MAX_NOTE_CHARS = 32_768


class _Body(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class InclusionProof(_Body, frozen=True):
    """``GET /v1/audit/proof/inclusion``: leaf ``index`` is in the tree of ``size`` leaves."""

    index: _Index
    size: _Size
    #: SHA-256(0x00 || entry) of the leaf, lowercase hex
    leaf_hash: Sha256Hex
    #: RFC 9162 §2.1.3 inclusion path, the sibling nearest the leaf first
    proof: _Proof


class ConsistencyProof(_Body, frozen=True):
    """``GET /v1/audit/proof/consistency``: the tree of ``new`` leaves extends ``old``."""

    old: _Size
    new: _Size
    #: RFC 9162 §2.1.4 consistency proof
    proof: _Proof


class EntriesPage(_Body, frozen=True):
    """``GET /v1/audit/entries``: the exact entry bytes of leaves ``start``, ``start+1``…"""

    start: _Index
    entries: Annotated[tuple[bytes, ...], msgspec.Meta(min_length=1, max_length=MAX_ENTRIES_PAGE)]


class CosignatureSubmission(_Body, frozen=True):
    """``POST /v1/audit/cosignature``: a witness's cosignature of one of the log's checkpoints."""

    #: the checkpoint note as served (the log's signature line, maybe other cosignatures)
    checkpoint: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NOTE_CHARS)]
    #: exactly one signed-note line ``— <member id> base64(...)\n`` of type cosignature/v1
    cosignature: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class CosignatureResult(_Body, frozen=True):
    """Answer to a cosignature: the checkpoint's size and how many witnesses cosigned it."""

    size: _Size
    witnesses: Annotated[int, msgspec.Meta(ge=1)]
