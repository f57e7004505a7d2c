"""The court exhibit: a case as a PDF/A-3u document with its evidence bundle inside
(issue 18 §1, PROTOCOL.md §21).

:func:`render_exhibit` is a pure function of the bundle's bytes, the reader's language
and the node's zone: WeasyPrint lays out ``templates/exhibit.html`` (the print view's
``side_rows.html`` shows each body) with fonts from fixed files, the document's dates
are the case's latest log instant and its file identifier is derived from the bundle's
hash. The same inputs give the same pages, so ``relay247 audit verify-bundle`` renders
the embedded bundle again and compares (``audit.exhibit``).

PDF/A-3u, not 3b: "u" also requires a Unicode mapping for every glyph, so the text of
every page can be extracted and searched, in Arabic as in Latin script; 3b guarantees
only the appearance. "a" (tagged structure) WeasyPrint does not yet produce reliably.
"""

from __future__ import annotations

import hashlib
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from console import _i18n
from console._exhibit_model import read_case
from console._locale import RTL, LocalTimes
from console._pages import coder
from console._side import SideRow, side_rows
from protocol.errors import ConfigError, MalformedError
from protocol.evidence import EmailFacts
from schemas.messages import kind_of

#: The file name of the embedded bundle (its /F and /UF in the file specification).
BUNDLE_NAME: Final = "relay247-evidence.json"
#: ``keywords`` of the document: how a verifier renders it again (language, zone, layout).
KEYWORDS_PREFIX: Final = "relay247-exhibit/1"
#: The layout of templates/exhibit.html: raise it with every change to what a page shows,
#: so that X5 tells a PDF laid out by another release from a changed one. 1: before the
#: e-mail section (and the PDFs that name no layout); 2: with it.
LAYOUT: Final = 2
#: Debian's fonts-dejavu-core: Latin, Cyrillic, Greek and Arabic (shaped by HarfBuzz
#: through Pango), in a sans and a mono face.
FONT_PACKAGE: Final = "fonts-dejavu-core"
FONT_DIR: Final = Path("/usr/share/fonts/truetype/dejavu")
_FONTS: Final = {
    "regular": "DejaVuSans.ttf",
    "bold": "DejaVuSans-Bold.ttf",
    "mono": "DejaVuSansMono.ttf",
}
#: The variant (see the module's docstring for the choice of "u").
PDF_VARIANT: Final = "pdf/a-3u"
LANGUAGES: Final = ("en", "fr", "es", "ar")

_ENV: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def fonts(where: Path = FONT_DIR) -> dict[str, str]:
    """The exhibit's font files as ``file:`` URLs.

    Raises:
        ConfigError: a file is missing; the message names the Debian package.
    """
    missing = [name for name in _FONTS.values() if not (where / name).is_file()]
    if missing:
        raise ConfigError(
            f"the court exhibit needs the fonts {', '.join(missing)} in {where}: install"
            f" the Debian package {FONT_PACKAGE} (apt-get install {FONT_PACKAGE})",
            detail="exhibit_fonts_missing",
        )
    return {k: (where / v).as_uri() for k, v in _FONTS.items()}


def keywords(language: str, zone: str) -> str:
    """The document's keywords: what a verifier needs to render it again."""
    return f"{KEYWORDS_PREFIX}; lang={language}; zone={zone}; layout={LAYOUT}"


def layout_of(text: str) -> int:
    """The layout :func:`keywords` names (1 when it names none: PDFs made before)."""
    parts = [p.strip() for p in text.split(";")]
    value = dict(p.split("=", 1) for p in parts[1:] if "=" in p).get("layout", "1")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 6 else 0


def parse_keywords(text: str) -> tuple[str, str]:
    """``(language, zone)`` from :func:`keywords`' text (the layout: :func:`layout_of`).

    Raises:
        MalformedError: not an exhibit's keywords (detail ``exhibit_keywords``).
    """
    parts = [p.strip() for p in text.split(";")]
    fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    language, zone = fields.get("lang", ""), fields.get("zone", "")
    if parts[0] != KEYWORDS_PREFIX or language not in LANGUAGES or not zone:
        raise MalformedError("the PDF is not a relay247 exhibit", detail="exhibit_keywords")
    return language, zone


def html_of(
    bundle: bytes, *, language: str, zone: str, font_dir: Path = FONT_DIR
) -> tuple[str, datetime]:
    """The exhibit's HTML and its date (verifying the bundle with the keys it names first).

    Raises:
        Relay247Error: the bundle does not verify; an unknown language or zone.
        ConfigError: the fonts are missing.
    """
    if language not in LANGUAGES:
        raise MalformedError(f"language {language!r}: one of {', '.join(LANGUAGES)}")
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MalformedError(f"time zone {zone!r} is unknown", detail="exhibit_zone") from None
    urls = fonts(font_dir)
    case = read_case(bundle)
    times = LocalTimes(tz, language)
    catalog = _i18n.CATALOGS[language]
    # The log key is a placeholder: the reader takes it from the coordinators, and
    # compares it with the one the checkpoint section shows.
    command = "relay247 audit verify-bundle exhibit.pdf --trust-root trust.json --log-key LOG-KEY"
    html = _ENV.get_template("exhibit.html").render(
        lang=language,
        rtl=language in RTL,
        t=lambda key: catalog[key],
        code=coder(language),
        case=case,
        times=times,
        zone=zone,
        sides=[side_rows(m.body, language, times) for m in case.messages],
        emails=[_email_row(e, language, times) for e in case.emails],
        fonts=urls,
        keywords=keywords(language, zone),
        as_of=case.as_of.astimezone(UTC).replace(microsecond=0).isoformat(),
        command=command,
    )
    return html, case.as_of


def _email_row(
    e: EmailFacts, language: str, times: LocalTimes
) -> tuple[EmailFacts, str | None, list[SideRow] | None]:
    """An e-mail of the case (B7) with its body's kind and rows when the bundle states
    one (B7d), else None for both."""
    if e.body is None:
        return e, None, None
    return e, kind_of(e.body), side_rows(e.body, language, times)


def render_exhibit(bundle: bytes, *, language: str, zone: str, font_dir: Path = FONT_DIR) -> bytes:
    """The exhibit of ``bundle`` as PDF/A-3u bytes, the bundle embedded with
    AFRelationship /Source and MIME type application/json.

    Raises:
        Relay247Error: the bundle does not verify; an unknown language or zone.
        ConfigError: the fonts are missing (the message names the Debian package).
    """
    from weasyprint import HTML, Attachment  # slow import: only when a PDF is made

    html, case_date = html_of(bundle, language=language, zone=zone, font_dir=font_dir)
    attachment = Attachment(
        string=bundle,
        name=BUNDLE_NAME,
        description="relay247 evidence bundle (application/json)",
        created=case_date,
        modified=case_date,
        relationship="Source",
    )
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB ICC profile and leaves closing it to the garbage
        # collector: that one ResourceWarning is not ours to fix (nothing else is hidden).
        warnings.filterwarnings("ignore", r"unclosed file .*sRGB2014\.icc", ResourceWarning)
        pdf: bytes = HTML(string=html, base_url=str(font_dir)).write_pdf(
            pdf_variant=PDF_VARIANT,
            attachments=[attachment],
            pdf_identifier=hashlib.sha256(bundle).hexdigest()[:32].encode(),
            uncompressed_pdf=False,
            finisher=_one_af_entry,
        )
    return pdf


def _one_af_entry(_document: object, pdf: Any) -> None:
    # WeasyPrint 70 lists the embedded file in the catalog's /AF twice (once from the
    # name tree, once from the file specification): one entry per associated file.
    af = pdf.catalog.get("AF")
    if af is not None:
        unique = list(dict.fromkeys(af))
        af.clear()
        af.extend(unique)
