"""``relay247 audit verify-bundle EXHIBIT.pdf``: the court exhibit's two checks (PROTOCOL.md
§21): the embedded bundle (X1–X4, then B1–B5 as for a JSON file) and the visible pages
against a fresh rendering of that bundle (X5)."""

from __future__ import annotations

from dataclasses import dataclass

from audit.exhibit import differs, first_difference, is_pdf, read_exhibit


@dataclass(frozen=True)
class PdfInput:
    """A PDF given to verify-bundle: its bytes and what X1–X4 took out of it."""

    pdf: bytes
    bundle: bytes
    keywords: str
    producer: str
    pages: int


def open_input(data: bytes) -> PdfInput | None:
    """X1–X4 when ``data`` has the PDF magic bytes; None for any other file (JSON).

    Raises:
        Relay247Error: the PDF is refused (the detail starts with a stable code).
    """
    if not is_pdf(data):
        return None
    x = read_exhibit(data)
    return PdfInput(data, x.bundle, x.keywords, x.producer, x.pages)


def check_pages(given: PdfInput) -> str:
    """X5, once the bundle verified: render it again and compare every page.

    Returns:
        The sentence for the report.

    Raises:
        Relay247Error: a page differs (``exhibit_page_differs: page N``) or another part
            of the document (``exhibit_document_differs: catalogue /Key``), the PDF does
            not say how it was rendered, or the fonts are missing here.
    """
    from weasyprint import __version__ as weasyprint_version

    from console._exhibit import LAYOUT, layout_of, parse_keywords, render_exhibit

    language, zone = parse_keywords(given.keywords)
    fresh = render_exhibit(given.bundle, language=language, zone=zone)
    found = first_difference(given.pdf, fresh)
    if found is not None:
        # a PDF laid out by another release is named as such, not as a changed one
        made = f"{given.producer}, exhibit layout {layout_of(given.keywords)}"
        here = f"WeasyPrint {weasyprint_version}, exhibit layout {LAYOUT}"
        raise differs(found, producer=made, local=here)
    return (
        f"The PDF's {given.pages} page(s), catalogue and document information match a fresh"
        " rendering of its embedded bundle "
        f"(language {language}, times in {zone} and UTC)."
    )
