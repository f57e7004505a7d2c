"""File names S14 refuses are refused before any work (PROTOCOL.md §15.2).

``POST /v1/attachments`` took ".", "..", and names that start or end with white space:
the node encrypted the file (and, with ``to``, uploaded it) and every send naming it was
then refused, the ciphertext left behind. The API and ``node send --attach`` now refuse
such a name first, with the rule the body check uses.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import msgspec
import pytest

from cli import _node_attach as na
from cli._passphrase import CliUsageError
from schemas import Attachment
from schemas._attachment import ATTACHMENTS, BAD_FILE_NAME, file_name_refused
from tests.integration._node_services import peers
from tests.integration.test_node_api import request
from tests.integration.test_node_attachments_api import _raw
from tests.support.network import make_network
from tests.support.relay import running_relay

REFUSED = (".", "..", " lead", "trail ", "\u00a0", "a\u2028", "\u3000x")
TAKEN = ("a b.txt", "...", ".profile", "x.", "é")


def test_the_rule() -> None:
    assert all(file_name_refused(n) for n in REFUSED)
    assert not any(file_name_refused(n) for n in TAKEN)


async def test_upload_refuses_names_every_send_would_refuse(tmp_path: Path) -> None:
    net = make_network()
    net.declare(ATTACHMENTS)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        out = fr.data / "attachments" / "out"
        for name in REFUSED:
            for to in ("", "&to=US"):  # with `to` and a length, it was uploaded as well
                target = f"/v1/attachments?name={quote(name, safe='')}&media_type=text/plain{to}"
                status, answer = await _raw(fr, "POST", target, b"hello")
                error = msgspec.json.decode(answer)
                assert (status, error["code"]) == (400, "malformed"), (name, answer)
                assert error["message"] == f"name: {BAD_FILE_NAME}", (name, answer)
        assert not out.exists() or not list(out.iterdir())
        # A name with a space inside is fine, and so is the send naming it.
        target = "/v1/attachments?name=a%20b.txt&media_type=text/plain&to=US"
        status, answer = await _raw(fr, "POST", target, b"hello")
        assert status == 201, answer
        made = msgspec.json.decode(answer, type=Attachment)
        await fr.api.send("US", msgspec.structs.replace(request(), attachments=(made,)))


async def test_node_send_attach_refuses_such_a_file_before_uploading(tmp_path: Path) -> None:
    files = []
    for i, name in enumerate(n for n in REFUSED if n not in {".", ".."}):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = folder / name
        path.write_bytes(b"x")
        files.append(path)
        with pytest.raises(CliUsageError) as err:
            na.check_files((path,), request())  # `node send` runs it before any call
        assert BAD_FILE_NAME in str(err.value)
    net = make_network()
    net.declare(ATTACHMENTS)
    async with running_relay(tmp_path / "relay", net) as relay, peers(tmp_path, net, relay) as p:
        fr = p["FR"]
        for path in files:
            with pytest.raises(CliUsageError):
                await na.with_files(fr.api, request(), (path,), "US")
        out = fr.data / "attachments" / "out"
        assert not out.exists() or not list(out.iterdir())
