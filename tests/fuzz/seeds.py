"""Make the committed seed corpora: ``python -m tests.fuzz.seeds`` (deterministic).

Every seed comes from the project's real material: the vectors under tests/vectors/,
``schemas.examples`` (one body of every kind), the example configs in deploy/config/,
and objects made by the product's own signers and sealers under the targets' fixed keys.
Each file is the target's selector byte followed by the input.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from datetime import timedelta
from pathlib import Path

from protocol import checkpoint, cosignature, note
from protocol.attachment import encrypt
from protocol.codec import encode
from protocol.envelope import seal_envelope
from protocol.httpsig import sign_request
from protocol.keystore import lock
from protocol.tiles import encode_entry_bundle, entries_path, tile_path
from schemas.examples import EXAMPLES
from schemas.keystore import SecretKeys
from schemas.messages import coarse_kind, encode_body, priority_of
from tests.fuzz import t_attachments, t_codec, t_configs, t_notes, t_paths, t_sfv
from tests.fuzz._harness import CORPUS
from tests.support.network import T0, make_network

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"


def _sfv() -> list[bytes]:
    out = [
        b"\x00" + t for t in (b"a=1, b=2;x=?0, c=(1 2);q=:AAE=:", b'k=*tok/en, d=-1.25, s="x\\"y"')
    ]
    uri = "https://relay.example/v1/envelopes?after=0&limit=10"
    body = b'{"v":1}'
    headers = {"content-type": "application/json", "content-digest": "sha-256=:x:"}
    signed = sign_request(
        "POST", uri, headers, body, key=t_sfv._KEY, keyid="fuzz", now=1_700_000_000
    )
    lines = ["POST", uri, signed["Signature-Input"], signed["Signature"]]
    lines += [
        f"{k}: {v}" for k, v in {**headers, **signed}.items() if not k.startswith("Signature")
    ]
    out.append(b"\x01" + "\n".join(lines).encode("latin-1"))
    return out


def _notes() -> list[bytes]:
    log = note.Signer(t_notes.ORIGIN, t_notes.LOG_KEY)
    witness = cosignature.CosignatureSigner("fuzz.example/witness", t_notes.WITNESS_KEY)
    out = []
    for size, ext in ((0, ()), (7, ()), (2**20, ("ext line",))):
        cp = checkpoint.Checkpoint(t_notes.ORIGIN, size, hashlib.sha256(b"%d" % size).digest(), ext)
        signed = checkpoint.sign_checkpoint(cp, log)
        cosig = cosignature.cosign(checkpoint.encode(cp), witness, 1_700_000_000).encode()
        for mode in range(4):
            out.append(bytes([mode]) + signed + (cosig if mode == 2 else b""))
    real = json.loads((VECTORS / "external/c2sp/checkpoints.json").read_text("utf-8"))
    for case in real["real_world"]:
        out.append(b"\x00" + case["note"].encode("utf-8"))
        out.append(b"\x03" + case["note"].split("\n\n")[0].encode("utf-8") + b"\n")
    return out


def _codec() -> list[bytes]:
    out = []
    net = make_network()
    fr, us = net.members["FR"], net.members["US"]
    env_sel = bytes([len(t_codec.KINDS)])
    for i, body in enumerate(EXAMPLES.values()):
        raw = encode_body(body)
        out.append(b"\x00" + raw)
        sealed = seal_envelope(
            raw,
            msg_id=f"{i:032x}",
            case_id=body.case_id,
            kind=coarse_kind(body),
            priority=priority_of(body),
            seq=1,
            sender="FR",
            signing_key=fr.signing,
            recipient="US",
            recipient_key=us.encryption.public,
            recipient_key_fp=us.encryption.fingerprint,
            created=T0,
            lifetime=timedelta(days=1),
        )
        out.append(env_sel + sealed.envelope)
    for case in json.loads((VECTORS / "envelopes.json").read_text("utf-8"))["cases"][:24]:
        out.append(env_sel + base64.b64decode(case["data_b64"]))
    receipts = json.loads((VECTORS / "receipts.json").read_text("utf-8"))
    for case in receipts["cases"][:8]:
        for key, value in case.items():
            if key.endswith("_b64") and isinstance(value, str):
                out.append(b"\x04" + base64.b64decode(value))
    directories = json.loads((VECTORS / "directories.json").read_text("utf-8"))
    for case in directories["cases"][:6]:
        for key, value in case.items():
            if key.endswith("_b64") and isinstance(value, str):
                out.append(b"\x08" + base64.b64decode(value))
    out.append(b"\x0c" + encode({"code": "malformed", "message": "x"}))
    return out


def _paths() -> list[bytes]:
    sel = {f.__name__: bytes([i]) for i, f in enumerate(t_paths.PARSERS)}
    tiles = json.loads((VECTORS / "external/c2sp/tiles.json").read_text("utf-8"))
    out = [sel["_decimal"] + t for t in (b"0", b"123", b"9223372036854775807")]
    for case in tiles["tile_index_path"]:
        out.append(sel["_tile"] + tile_path(0, case["index"]).encode())
        out.append(sel["_tile"] + tile_path(2, case["index"], 17).encode())
        out.append(sel["_entries"] + entries_path(case["index"], 3).encode())
    out += [sel["_range"] + t for t in (b"x\nbytes=0-99", b"xy\nbytes=-5", b"z\nbytes=10-")]
    out.append(sel["_audit"] + b"first=1&second=10")
    out.append(sel["_audit"] + b"index=3&size=8")
    out.append(sel["_mailbox"] + b"after=12&limit=100")
    out.append(sel["_node_api"] + b"with_linked=1")
    out.append(sel["_blob"] + b"0123456789abcdef0123456789abcdef")
    out.append(sel["_console_inbox"] + b"closed=1&page=2")
    out.append(
        sel["_console_search"]
        + b"identifier=x&id_type=ipv4&state=open&from=2026-01-01&to=2026-12-31&page=3"
    )
    out.append(sel["_console_access"] + b"officer=a&case=b&from=2026-01-01&to=2026-02-01&page=1")
    leaves = [encode({"i": i}) for i in range(3)]
    out.append(sel["_bundle"] + encode_entry_bundle(leaves))
    out.append(sel["_bundle"] + encode_entry_bundle([bytes(32)]))
    return out


def _configs() -> list[bytes]:
    out = [b"\x00" + (ROOT / "deploy/config/relay.toml").read_bytes()]
    out.append(b"\x01" + (ROOT / "deploy/config/node.toml").read_bytes())
    out.append(b'\x00[relay]\nid = "r"\npublic_url = "http://127.0.0.1:1"\n')
    node_keys = {"signing": b"\x01" * 32, "encryption": b"\x02" * 32, "transport": b"\x03" * 32}
    relay_keys = {"log": b"\x04" * 32, "transport": b"\x05" * 32}
    for mode, owner, named in (
        (2, "FR", node_keys),
        (3, "FR", node_keys),
        (4, "relay", relay_keys),
    ):
        locked = lock(
            SecretKeys(owner=owner, keys=named),
            t_configs.PASSPHRASE,
            salt=bytes(16),
            nonce=bytes(24),
            opslimit=1,
            memlimit=8192,
        )
        out.append(bytes([mode]) + locked)
    return out


def _node_api() -> list[bytes]:
    out = []
    for body in EXAMPLES.values():
        out.append(b"\x00" + b'{"to":"US","body":' + encode_body(body) + b"}")
    out.append(b'\x01{"case_id":"' + b"0" * 32 + b'","note":"x"}')
    out.append(b"\x02report.pdf\napplication/pdf")
    return out


def _attachments() -> list[bytes]:
    out = []
    for size in (0, 1, 100, 65_536, 65_600):
        dst = io.BytesIO()
        encrypt(io.BytesIO(bytes(i % 251 for i in range(size))), dst, t_attachments.KEY)
        for mode in (0, 1):
            out.append(bytes([mode]) + dst.getvalue())
    return out


MAKERS = {
    "sfv": _sfv,
    "notes": _notes,
    "codec": _codec,
    "paths": _paths,
    "configs": _configs,
    "node_api": _node_api,
    "attachments": _attachments,
}


def main() -> None:
    for name, make in MAKERS.items():
        folder = CORPUS / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for data in make():
            (folder / f"seed-{hashlib.sha256(data).hexdigest()[:16]}").write_bytes(data)
        print(f"{name}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
