"""Reading a court exhibit (PROTOCOL.md §21): the evidence bundle embedded in the PDF,
and a comparison with a fresh rendering of it: page by page, then the document catalogue
and information dictionary.

The PDF is untrusted input. Steps X1–X4 take the one embedded bundle out of it before
anything in it is believed; :func:`protocol.evidence.verify_bundle` then checks the bundle
(B1–B5) and :func:`first_difference` (X5) all that a viewer shows. Every refusal is a
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
DOCUMENT_DIFFERS: Final = "exhibit_document_differs"
_EMBEDDED: Final = pikepdf.Name("/EmbeddedFile")


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
            (``exhibit_no_bundle``), more than one embedded file anywhere in the PDF or a
            catalogue /AF that is not exactly the name tree's one (``exhibit_two_bundles``);
            X3 no /AF, or its relationship is not /Source or its type not
            application/json (``exhibit_not_source``).
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
        # X2: exactly one embedded file: the name tree's, which /AF lists alone.
        specs = [pdf.attachments[name].obj for name in pdf.attachments]
        if not specs:
            raise MalformedError("the PDF carries no evidence bundle", detail=NO_BUNDLE)
        if len(specs) != 1:
            raise _two_bundles(f"its name tree lists {len(specs)} embedded files")
        spec = specs[0]
        af = pdf.Root.get("/AF")
        if not isinstance(af, pikepdf.Array) or len(af) == 0:
            raise MalformedError(
                "the embedded file is not the PDF's associated file (the catalogue's /AF)",
                detail=f"{NOT_SOURCE}: no /AF",
            )
        listed = af[0] if len(af) == 1 else None
        if (
            not spec.is_indirect
            or not isinstance(listed, pikepdf.Dictionary)
            or listed.objgen != spec.objgen
        ):
            raise _two_bundles("the catalogue's /AF lists another file than its name tree")
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
        # X2 again: no other embedded file anywhere in the PDF (a page's annotation, /EF /UF)
        other = _other_embedded_file(pdf, spec, stream)
        if other is not None:
            raise _two_bundles(f"object {other[0]} {other[1]} R holds another embedded file")
        # X4: bounded before and while decompressing (a small stream can inflate hugely).
        bundle = _bounded(stream)
        info = pdf.docinfo
        return Exhibit(
            bundle=bundle,
            keywords=str(info.get("/Keywords", "")),
            producer=str(info.get("/Producer", "")),
            pages=len(pdf.pages),
        )


def _two_bundles(why: str) -> MalformedError:
    return MalformedError(
        f"the PDF carries more than one embedded file: which is the evidence is ambiguous ({why})",
        detail=f"{TWO_BUNDLES}: {why}",
    )


def _other_embedded_file(
    pdf: pikepdf.Pdf, spec: pikepdf.Object, stream: pikepdf.Stream
) -> tuple[int, int] | None:
    """The first object of ``pdf`` (walking all of them, reachable or not) that holds a
    file specification's /EF other than ``spec``'s, an /EF entry other than ``stream``,
    or an /EmbeddedFile stream other than ``stream``; None when there is none."""
    for obj in pdf.objects:
        if not isinstance(obj, (pikepdf.Dictionary, pikepdf.Array, pikepdf.Stream)):
            continue
        holder = obj.objgen
        todo: list[tuple[pikepdf.Object, int]] = [(obj, 0)]
        while todo:
            item, depth = todo.pop()
            if depth > MAX_DEPTH:
                raise MalformedError("the PDF nests its objects too deeply", detail=NOT_PDF)
            if isinstance(item, pikepdf.Stream):
                if item.objgen != stream.objgen and item.stream_dict.get("/Type") == _EMBEDDED:
                    return holder
                item = item.stream_dict
            if isinstance(item, pikepdf.Dictionary):
                ef = item.get("/EF")
                if ef is not None and (
                    not item.is_indirect
                    or item.objgen != spec.objgen
                    or not isinstance(ef, pikepdf.Dictionary)
                    or any(f.objgen != stream.objgen for f in ef.values())
                ):
                    return holder
                children = list(item.values())
            elif isinstance(item, pikepdf.Array):
                children = list(item)
            else:
                continue
            # indirect children are walked as objects of their own
            todo.extend(
                (c, depth + 1)
                for c in children
                if isinstance(c, (pikepdf.Dictionary, pikepdf.Array)) and not c.is_indirect
            )
    return None


def _bounded(stream: pikepdf.Stream) -> bytes:
    params = stream.get("/Params")
    declared = params.get("/Size", 0) if isinstance(params, pikepdf.Dictionary) else 0
    too_large = TooLargeError(
        f"the embedded bundle is over {MAX_BUNDLE_BYTES} bytes", detail=BUNDLE_TOO_LARGE
    )
    if int(declared) > MAX_BUNDLE_BYTES:
        raise too_large
    out = _inflate(stream, MAX_BUNDLE_BYTES, "the embedded bundle", NOT_SOURCE)
    if len(out) > MAX_BUNDLE_BYTES:
        raise too_large
    return out


def _inflate(stream: pikepdf.Stream, limit: int, what: str, detail: str) -> bytes:
    """A stream stored as is or deflated, decoded: at most ``limit + 1`` bytes of it."""
    raw = stream.read_raw_bytes()
    filters = stream.get("/Filter")
    if filters is None:
        return raw[: limit + 1]
    if filters != pikepdf.Name.FlateDecode:
        raise MalformedError(f"{what} uses another filter", detail=detail)
    try:
        return zlib.decompressobj().decompress(raw, limit + 1)
    except zlib.error:
        raise MalformedError(f"{what} does not inflate", detail=detail) from None


#: nesting of arrays and dictionaries a page may have (WeasyPrint's go a few levels deep)
MAX_DEPTH: Final = 64
_Ref = tuple[int, int]
#: a page's own keys left out of its digest: its place in the page tree (its ancestors'
#: keys, which a page inherits, are fed instead), and of the ancestors their kids and count
_PAGE_SKIP: Final = frozenset({"/Parent"})
_ANCESTOR_SKIP: Final = frozenset({"/Parent", "/Kids", "/Count"})
#: XMP metadata is compared decoded: qpdf (pikepdf, ocrmypdf...) writes it uncompressed
_XMP: Final = pikepdf.Name("/Metadata")
_CODING: Final = frozenset({"/Filter", "/DecodeParms", "/DL"})
MAX_XMP_BYTES: Final = 1 << 20


class _Digest:
    """A SHA-256 over PDF objects as stored: every key but a stream's /Length (its bytes
    are hashed), streams as their encoded bytes and dictionary, never decoded (but XMP
    metadata, inflated to at most ``MAX_XMP_BYTES`` + 1 bytes, its coding left out). Object
    numbers are left out: an object met again is hashed as the order it was first met
    in, and a reference to a page as that page's number."""

    def __init__(self, pages: dict[_Ref, int]) -> None:
        self.h = hashlib.sha256()
        self.seen: dict[_Ref, int] = {}
        self.pages = pages

    def feed(self, obj: object, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise MalformedError("the PDF nests its objects too deeply", detail=NOT_PDF)
        if isinstance(obj, pikepdf.Object) and obj.is_indirect:
            ref = obj.objgen
            if ref in self.pages:
                self.h.update(f"<page {self.pages[ref]}>".encode())
                return
            if ref in self.seen:
                self.h.update(f"<seen {self.seen[ref]}>".encode())
                return
            self.seen[ref] = len(self.seen)
        if isinstance(obj, pikepdf.Stream) and obj.stream_dict.get("/Type") == _XMP:
            self.h.update(b"xmp" + _inflate(obj, MAX_XMP_BYTES, "the XMP metadata", NOT_PDF))
            self.feed_dict(obj.stream_dict, depth + 1, _CODING)
        elif isinstance(obj, pikepdf.Stream):
            self.h.update(b"stream" + obj.read_raw_bytes())
            self.feed_dict(obj.stream_dict, depth + 1)
        elif isinstance(obj, pikepdf.Dictionary):
            self.feed_dict(obj, depth + 1)
        elif isinstance(obj, pikepdf.Array):
            self.h.update(b"[")
            for item in obj:
                self.feed(item, depth + 1)
            self.h.update(b"]")
        else:
            self.h.update(repr(obj).encode())

    def feed_dict(
        self, d: pikepdf.Dictionary, depth: int, skip: frozenset[str] = frozenset()
    ) -> None:
        self.h.update(b"<<")
        for key in sorted(d.keys()):
            if key not in skip and key != "/Length":
                self.h.update(key.encode())
                self.feed(d[key], depth)
        self.h.update(b">>")


def _numbers(pdf: pikepdf.Pdf) -> dict[_Ref, int]:
    return {page.obj.objgen: n for n, page in enumerate(pdf.pages, 1)}


def _page_digest(page: pikepdf.Dictionary, pages: dict[_Ref, int]) -> bytes:
    """The whole page dictionary, and what it inherits: each ancestor's keys in the page
    tree (a /Rotate or /CropBox set on the tree turns every page)."""
    d = _Digest(pages)
    d.feed_dict(page, 0, _PAGE_SKIP)
    node = page.get("/Parent")
    for _ in range(MAX_DEPTH):
        if not isinstance(node, pikepdf.Dictionary):
            return d.h.digest()
        d.feed_dict(node, 0, _ANCESTOR_SKIP)
        node = node.get("/Parent")
    raise MalformedError("the PDF nests its page tree too deeply", detail=NOT_PDF)


def _value_digest(obj: object, pages: dict[_Ref, int]) -> bytes:
    d = _Digest(pages)
    d.feed(obj, 0)
    return d.h.digest()


def page_digests(data: bytes) -> list[bytes]:
    """One SHA-256 per page: the whole page dictionary but its /Parent (content streams,
    resources with the fonts' programs and Unicode maps, boxes, rotation, annotations,
    actions, thumbnail...) and the keys it inherits from the page tree.

    Raises:
        MalformedError: nesting deeper than ``MAX_DEPTH`` (detail ``exhibit_not_pdf``).
    """
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pages = _numbers(pdf)
        return [_page_digest(page.obj, pages) for page in pdf.pages]


@dataclass(frozen=True)
class Difference:
    """X5: the first part of a PDF that is not as in a fresh rendering of its bundle."""

    #: "page N", "catalogue /Key[ /Key]" or "document information /Key"
    part: str
    #: "differs from", "is not in" (only in the given PDF) or "is missing from"
    how: str = "differs from"


def first_difference(given: bytes, fresh: bytes) -> Difference | None:
    """X5: what of ``given`` is not as in ``fresh``: its first differing page (from 1),
    then the document catalogue's entries (all but the page tree, compared above) and the
    document information dictionary, two levels deep; None when nothing differs.

    The page counts are compared first: a PDF with more pages than the fresh rendering
    differs at the first page past it, and its extra pages are never read."""
    b = page_digests(fresh)
    with pikepdf.open(io.BytesIO(given)) as pdf, pikepdf.open(io.BytesIO(fresh)) as ref:
        pages = _numbers(pdf)
        count = len(pdf.pages)
        shared = min(count, len(b))
        for number in range(shared):
            if _page_digest(pdf.pages[number].obj, pages) != b[number]:
                return Difference(f"page {number + 1}")
        if count != len(b):
            return Difference(f"page {shared + 1}")
        theirs = _numbers(ref)
        for part, x, y in (
            ("catalogue", pdf.Root, ref.Root),
            ("document information", pdf.trailer.get("/Info"), ref.trailer.get("/Info")),
        ):
            found = _differing_entry(part, x, y, (pages, theirs), levels=2)
            if found is not None:
                return found
    return None


def _differing_entry(
    part: str,
    x: object,
    y: object,
    pages: tuple[dict[_Ref, int], dict[_Ref, int]],
    levels: int,
) -> Difference | None:
    if not isinstance(x, pikepdf.Dictionary) or not isinstance(y, pikepdf.Dictionary):
        if _value_digest(x, pages[0]) == _value_digest(y, pages[1]):
            return None
        return Difference(part)
    # the catalogue's page tree was compared page by page, each with its ancestors
    skip = {"/Pages"} if part == "catalogue" else set()
    keys = sorted((set(x.keys()) | set(y.keys())) - skip)
    for key in keys:  # a key of one only is named before any value that differs
        if key not in y:
            return Difference(f"{part} {key}", "is not in")
        if key not in x:
            return Difference(f"{part} {key}", "is missing from")
    for key in keys:
        if _value_digest(x[key], pages[0]) != _value_digest(y[key], pages[1]):
            deeper = None
            if levels > 1:
                deeper = _differing_entry(f"{part} {key}", x[key], y[key], pages, levels - 1)
            return deeper or Difference(f"{part} {key}")
    return None


def differs(found: Difference, *, producer: str, local: str) -> VerificationError:
    """The X5 refusal, naming the part (and the renderers when they differ)."""
    note = "" if producer == local else f"; rendered by {producer}, checked with {local}"
    code = PAGE_DIFFERS if found.part.startswith("page ") else DOCUMENT_DIFFERS
    return VerificationError(
        f"{found.part} of the PDF {found.how} a fresh rendering of its embedded bundle",
        detail=f"{code}: {found.part}{note}",
    )
