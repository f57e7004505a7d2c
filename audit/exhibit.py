"""Reading a court exhibit (PROTOCOL.md §21): the evidence bundle embedded in the PDF,
and a page-by-page comparison with a fresh rendering of it.

The PDF is untrusted input. Steps X1–X4 take the one embedded bundle out of it before
anything in it is believed; :func:`protocol.evidence.verify_bundle` then checks the bundle
(B1–B5) and :func:`differing_page` (X5) the visible pages. Every refusal is a
:class:`~protocol.errors.Relay247Error` whose ``detail`` starts with a stable code.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from typing import Final

import pikepdf

from protocol.errors import MalformedError, TooLargeError, VerificationError
from protocol.evidence import MAX_BUNDLE_BYTES

MAGIC: Final = b"%PDF-"
#: A PDF larger than this is refused before it is parsed (the bundle's limit plus room
#: for the pages; a 50-message case's exhibit is a few hundred kilobytes more than it).
MAX_EXHIBIT_BYTES: Final = MAX_BUNDLE_BYTES + 64 * 1024 * 1024
NOT_PDF: Final = "exhibit_not_pdf"
NO_BUNDLE: Final = "exhibit_no_bundle"
TWO_BUNDLES: Final = "exhibit_two_bundles"
BUNDLE_TOO_LARGE: Final = "exhibit_bundle_too_large"
NOT_SOURCE: Final = "exhibit_not_source"
PAGE_DIFFERS: Final = "exhibit_page_differs"
#: keys left out of a page's digest (the filters are in it: a stream is hashed encoded)
_SKIP: Final = frozenset({"/Length", "/Parent", "/P"})


def is_pdf(data: bytes) -> bool:
    """True when ``data`` starts with the PDF magic bytes (``%PDF-``)."""
    return data.startswith(MAGIC)


@dataclass(frozen=True)
class Exhibit:
    """What X1–X4 took out of a PDF: the bundle and how the pages were rendered."""

    bundle: bytes
    keywords: str
    producer: str
    pages: int


def read_exhibit(data: bytes) -> Exhibit:
    """X1–X4: open the PDF and take out its one embedded evidence bundle.

    Raises:
        MalformedError: X1 not a PDF (``exhibit_not_pdf``); X2 no embedded bundle
            (``exhibit_no_bundle``) or more than one embedded file (``exhibit_two_bundles``);
            X3 its relationship is not /Source or its type not application/json
            (``exhibit_not_source``).
        TooLargeError: X4 the embedded file is over the bundle limit
            (``exhibit_bundle_too_large``), declared or once decompressed.
    """
    # X1: the magic bytes, a bounded size, then a parser that accepts it.
    if not is_pdf(data):
        raise MalformedError("not a PDF (no %PDF- magic bytes)", detail=NOT_PDF)
    if len(data) > MAX_EXHIBIT_BYTES:
        raise TooLargeError(f"PDF over {MAX_EXHIBIT_BYTES} bytes", detail=BUNDLE_TOO_LARGE)
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except pikepdf.PdfError as exc:
        raise MalformedError("the PDF does not parse", detail=f"{NOT_PDF}: {exc}") from None
    with pdf:
        # X2: exactly one embedded file, listed both in the name tree and in /AF.
        specs = [pdf.attachments[name].obj for name in pdf.attachments]
        af = pdf.Root.get("/AF")
        af_specs = [] if af is None else list({x.objgen: x for x in af}.values())
        if not specs:
            raise MalformedError("the PDF carries no evidence bundle", detail=NO_BUNDLE)
        if len(specs) != 1 or len(af_specs) > 1:
            raise MalformedError(
                "the PDF carries more than one embedded file: which is the evidence is ambiguous",
                detail=TWO_BUNDLES,
            )
        spec = specs[0]
        # X3: the bundle is the exhibit's source, as JSON.
        ef = spec.get("/EF")
        stream = ef.get("/F") if isinstance(ef, pikepdf.Dictionary) else None
        if (
            spec.get("/AFRelationship") != pikepdf.Name.Source
            or not isinstance(stream, pikepdf.Stream)
            or str(stream.get("/Subtype")) != "/application/json"
        ):
            raise MalformedError(
                "the embedded file is not the exhibit's source JSON (AFRelationship"
                " /Source, application/json)",
                detail=NOT_SOURCE,
            )
        # X4: bounded before and while decompressing (a small stream can inflate hugely).
        bundle = _bounded(stream)
        info = pdf.docinfo
        return Exhibit(
            bundle=bundle,
            keywords=str(info.get("/Keywords", "")),
            producer=str(info.get("/Producer", "")),
            pages=len(pdf.pages),
        )


def _bounded(stream: pikepdf.Stream) -> bytes:
    params = stream.get("/Params")
    declared = params.get("/Size", 0) if isinstance(params, pikepdf.Dictionary) else 0
    too_large = TooLargeError(
        f"the embedded bundle is over {MAX_BUNDLE_BYTES} bytes", detail=BUNDLE_TOO_LARGE
    )
    if int(declared) > MAX_BUNDLE_BYTES:
        raise too_large
    raw = stream.read_raw_bytes()
    filters = stream.get("/Filter")
    if filters is None:
        out = raw
    elif filters == pikepdf.Name.FlateDecode:
        inflate = zlib.decompressobj()
        try:
            out = inflate.decompress(raw, MAX_BUNDLE_BYTES + 1)
        except zlib.error:
            raise MalformedError(
                "the embedded bundle does not inflate", detail=NOT_SOURCE
            ) from None
    else:
        raise MalformedError("the embedded bundle uses another filter", detail=NOT_SOURCE)
    if len(out) > MAX_BUNDLE_BYTES:
        raise too_large
    return out


#: nesting of arrays and dictionaries a page may have (WeasyPrint's go a few levels deep)
MAX_DEPTH: Final = 64


def page_digests(data: bytes) -> list[bytes]:
    """One SHA-256 per page over what it shows: its content streams and resources (the
    fonts' programs and Unicode maps included), with object numbers left out.

    Streams are hashed as stored (their encoded bytes and their dictionary, filters
    included), never decoded: the rendering is deterministic to the byte, and a hostile
    PDF's compressed streams (a decompression bomb) are then never inflated.

    Raises:
        MalformedError: nesting deeper than ``MAX_DEPTH`` (detail ``exhibit_not_pdf``).
    """
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [_page_digest(page.obj) for page in pdf.pages]


def _page_digest(page: pikepdf.Dictionary) -> bytes:
    h = hashlib.sha256()
    seen: set[tuple[int, int]] = set()
    for key in ("/MediaBox", "/Contents", "/Resources"):
        h.update(key.encode())
        _feed(page.get(key), h, seen, 0)
    return h.digest()


def _feed(obj: object, h: hashlib._Hash, seen: set[tuple[int, int]], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedError("the PDF nests its objects too deeply", detail=NOT_PDF)
    if isinstance(obj, pikepdf.Object) and obj.is_indirect:
        if obj.objgen in seen:
            h.update(b"<seen>")
            return
        seen.add(obj.objgen)
    if isinstance(obj, pikepdf.Stream):
        h.update(b"stream" + obj.read_raw_bytes())
        _feed_dict(obj.stream_dict, h, seen, depth + 1)
    elif isinstance(obj, pikepdf.Dictionary):
        _feed_dict(obj, h, seen, depth + 1)
    elif isinstance(obj, pikepdf.Array):
        h.update(b"[")
        for item in obj:
            _feed(item, h, seen, depth + 1)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def _feed_dict(
    d: pikepdf.Dictionary, h: hashlib._Hash, seen: set[tuple[int, int]], depth: int
) -> None:
    for key in sorted(d.keys()):
        if key not in _SKIP:
            h.update(key.encode())
            _feed(d[key], h, seen, depth)


def differing_page(given: bytes, fresh: bytes) -> int | None:
    """X5: the first page (from 1) of ``given`` that differs from ``fresh``, else None.

    The page counts are compared first: a PDF with more pages than the fresh rendering
    differs at the first page past it, and its extra pages are never read."""
    b = page_digests(fresh)
    with pikepdf.open(io.BytesIO(given)) as pdf:
        count = len(pdf.pages)
        shared = min(count, len(b))
        for number in range(shared):
            if _page_digest(pdf.pages[number].obj) != b[number]:
                return number + 1
    return None if count == len(b) else shared + 1


def page_differs(page: int, *, producer: str, local: str) -> VerificationError:
    """The X5 refusal, naming the page (and the renderers when they differ)."""
    note = "" if producer == local else f"; rendered by {producer}, checked with {local}"
    return VerificationError(
        f"page {page} of the PDF differs from a fresh rendering of its embedded bundle",
        detail=f"{PAGE_DIFFERS}: page {page}{note}",
    )
