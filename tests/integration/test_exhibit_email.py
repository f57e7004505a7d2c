"""The court exhibit of a case exchanged by e-mail (issue 18 §1 and §2, PROTOCOL.md §21,
§22): ``relay247 node export-case --pdf`` shows every e-mail of the case in the reader's
language (its record, the e-mail's SHA-256, its log position, who signed the record, and
the content the node states), and ``relay247 audit verify-bundle`` still refuses a PDF
whose e-mail page was changed, naming the page.

A real relay and two nodes, MT played by GnuPG over aiosmtpd and Dovecot, as in
test_email_bridge_network.py; both CLI commands run as processes, as an officer runs them.
"""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pikepdf
import pytest

from audit.exhibit import PAGE_DIFFERS
from schemas.examples import EXAMPLES
from tests.integration.test_email_bridge import _reply, gpg, impostor, mail
from tests.integration.test_email_bridge_network import HANG_GUARD, _logged, _preserved, bridged
from tests.support.bodies import addressed
from tests.support.mailserver import GpgMember, MailServer, mail_available
from tests.support.relay import signed

pytestmark = pytest.mark.skipif(mail_available() is not None, reason=str(mail_available()))
__all__ = ["gpg", "impostor", "mail"]  # the fixtures this module uses
RELAY247 = str(Path(sys.executable).with_name("relay247"))


async def _cli(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        RELAY247, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    async with asyncio.timeout(HANG_GUARD):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _text(path: Path) -> list[str]:
    """Each page's text (pdftotext, one page a form feed apart), spaces squeezed."""
    out = subprocess.run(["pdftotext", str(path), "-"], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return [re.sub(r"\s+", " ", page) for page in out.split("\f")]


async def test_an_email_case_exhibit_shows_every_email_and_refuses_a_changed_page(
    tmp_path: Path, mail: MailServer, gpg: GpgMember
) -> None:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    async with bridged(tmp_path, mail, gpg) as net:
        fr = net.peers["FR"]
        request = addressed(EXAMPLES["preservation_request"], "FR", "MT")
        case_id = request.case_id
        sent = await fr.api.send("MT", request)
        await _logged(net, case_id, 1)
        mail.deliver(_reply(gpg, net.key, _preserved(case_id, sent.msg_id)))
        entries = await _logged(net, case_id, 2)
        await signed(net.relay)  # a checkpoint covering both records
        pdf = tmp_path / "exhibit.pdf"
        code, out = await _cli("node", "export-case", case_id, "--pdf", str(pdf), "--lang",
                               "fr", "--json", "--data", str(fr.data))  # fmt: skip
        assert code == 0, out
        verify = msgspec.json.decode(out)["verify"]

    # Every e-mail, in French: direction, kind, record, hash, log position, signer.
    pages = _text(pdf)
    text = " ".join(pages)
    assert "Échangés par courriel 2" in text  # the summary's count
    assert "Courriel 1. Demande de conservation rapide (art. 29) · envoyé par courriel" in text
    assert "Courriel 2. Données conservées · reçu par courriel" in text
    for e in entries:
        assert e.sha256 in text.replace(" ", "")  # a long hash may wrap
        # the label may wrap: its last word then follows the value
        assert re.search(rf"Inscription au journal du relais, (entrée )?{e.leaf_index} · ", text)
    assert text.count("Inscription signée par le nœud FR") == 2
    assert "Contenu, tel que le nœud le déclare" in text
    assert "le journal prouve l'empreinte du courriel, pas son contenu" in text

    # It verifies as it is (the re-rendering matches) ...
    argv = shlex.split(verify)
    assert argv[1:3] == ["audit", "verify-bundle"]
    code, out = await _cli(*argv[1:])
    assert code == 0, out
    assert "match a fresh rendering of its embedded bundle" in out
    assert f"entry {entries[1].leaf_index}" in out  # the report names the e-mails' leaves

    # ... and a change to the text of the page that shows the e-mails is found there.
    page = next(i for i, p in enumerate(pages) if "Courriel 2." in p)
    with pikepdf.open(io.BytesIO(pdf.read_bytes())) as doc:
        target = doc.pages[page]
        contents = target.Contents
        content = contents.read_bytes() if isinstance(contents, pikepdf.Stream) else (
            b"".join(c.read_bytes() for c in contents))  # fmt: skip
        assert b" Tm" in content
        target.Contents = doc.make_stream(content.replace(b" Tm", b" Tm 1 0 Td", 1))
        edited = tmp_path / "edited.pdf"
        doc.save(edited)
    argv[argv.index(str(pdf))] = str(edited)
    code, out = await _cli(*argv[1:])
    assert code == 1, out
    assert "REFUSED" in out
    assert f"{PAGE_DIFFERS}: page {page + 1}" in out
