"""``relay247 network rotate-key`` and ``revoke`` (issue 6, PROTOCOL.md §3.5).

Both edit only ``state.json``; the change takes effect when the quorum publishes it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import msgspec

from cli._network import _DIR_OPTION, _JSON_OPTION, emit, read_state, write_state
from cli._numbers import AsciiIntRange
from cli._passphrase import CliUsageError
from protocol.codec import decode_as, shape_text
from protocol.directory import key_fingerprint
from protocol.errors import MalformedError
from schemas.directory import Directory, KeyAlg, KeyUse, Member, MemberKey

#: Default grace (days) during which the old key stays valid after a rotation. Encryption
#: keys need one so envelopes sealed to the old key before the switch still open; a
#: signing or transport key only needs to cover the node switching over, so one day.
DEFAULT_GRACE = {KeyUse.ENCRYPTION: 14, KeyUse.SIGNING: 1, KeyUse.TRANSPORT: 1}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _with_member(directory: Directory, member: Member) -> Directory:
    members = tuple(member if m.id == member.id else m for m in directory.members)
    return msgspec.structs.replace(directory, members=members)


def _find(directory: Directory, member_id: str) -> Member:
    for m in directory.members:
        if m.id == member_id:
            return m
    raise CliUsageError(f"no member {member_id} in the working directory")


def rotate(
    member: Member, use: KeyUse, public: bytes, *, now: datetime, grace: timedelta, days: int
) -> Member:
    """Return ``member`` with a new key of ``use`` valid from ``now``.

    Every key of that use still valid after ``now + grace`` is cut to end then (never
    extended); a key that would end before it starts ends one second after its start.

    Raises:
        CliUsageError: the new key is listed already.
    """
    alg = KeyAlg.X25519 if use is KeyUse.ENCRYPTION else KeyAlg.ED25519
    new = MemberKey(
        use=use, alg=alg, public=public, not_before=now, not_after=now + timedelta(days)
    )
    if any(key_fingerprint(k) == key_fingerprint(new) for k in member.keys):
        raise CliUsageError("this key is listed already")
    end = now + grace
    keys = []
    for k in member.keys:
        if k.use is use and k.not_after > end:
            cut = max(end, k.not_before + timedelta(seconds=1))
            keys.append(msgspec.structs.replace(k, not_after=cut))
        else:
            keys.append(k)
    return msgspec.structs.replace(member, keys=(*keys, new))


def revoke_key(member: Member, fp: str, reason: str, effective: datetime) -> Member:
    """Return ``member`` with key ``fp`` revoked from ``effective`` on.

    A key already revoked may only have its revocation moved earlier.

    Raises:
        CliUsageError: no such key, or an already revoked key would be revoked later.
    """
    keys = []
    found = False
    for k in member.keys:
        if key_fingerprint(k) == fp:
            found = True
            if k.revoked_at is not None and k.revoked_at <= effective:
                raise CliUsageError(f"key {fp} is revoked already since {k.revoked_at}")
            keys.append(msgspec.structs.replace(k, revoked_at=effective, revocation_reason=reason))
        else:
            keys.append(k)
    if not found:
        raise CliUsageError(f"member {member.id} has no key {fp}")
    return msgspec.structs.replace(member, keys=tuple(keys))


@click.command("rotate-key")
@_DIR_OPTION
@click.option("--member", "member_id", required=True, help="Member id, e.g. FR.")
@click.option(
    "--use",
    required=True,
    type=click.Choice([u.value for u in KeyUse]),
    help="Which of the member's keys is replaced.",
)
@click.option("--public", "public_hex", required=True, help="The new public key, hex.")
@click.option(
    "--grace-days",
    type=AsciiIntRange(0, 365),
    default=None,
    help="Days the old key stays valid (default: encryption 14, signing/transport 1).",
)
@click.option(
    "--valid-days",
    default=730,
    show_default=True,
    type=AsciiIntRange(1, 3650),
    help="How long the new key stays valid, from now.",
)
@_JSON_OPTION
def rotate_key(
    *,
    netdir: Path,
    member_id: str,
    use: str,
    public_hex: str,
    grace_days: int | None,
    valid_days: int,
    as_json: bool,
) -> None:
    """Add a member's new key (valid from now) and end the old one after a grace."""
    key_use = KeyUse(use)
    try:
        public = bytes.fromhex(public_hex)
    except ValueError:
        raise click.BadParameter("not hexadecimal", param_hint="public") from None
    if len(public) != 32:
        raise click.BadParameter("a public key is 32 bytes", param_hint="public")
    grace = timedelta(days=DEFAULT_GRACE[key_use] if grace_days is None else grace_days)
    directory = read_state(netdir)
    now = _now()
    member = rotate(
        _find(directory, member_id), key_use, public, now=now, grace=grace, days=valid_days
    )
    write_state(netdir, _with_member(directory, member))
    emit(
        {
            "member": member_id,
            "use": use,
            "new_key": key_fingerprint(member.keys[-1]),
            "old_keys_end": (now + grace).isoformat(),
            "next_version": directory.version,
        },
        as_json,
    )


@click.command("revoke")
@_DIR_OPTION
@click.option("--member", "member_id", required=True, help="Member id, e.g. FR.")
@click.option("--key", "fp", required=True, help="Fingerprint of the key to revoke.")
@click.option("--reason", required=True, help="Why (published in the directory).")
@click.option(
    "--effective",
    default=None,
    help="ISO 8601 time with offset from which the key is revoked (default: now).",
)
@_JSON_OPTION
def revoke(
    *, netdir: Path, member_id: str, fp: str, reason: str, effective: str | None, as_json: bool
) -> None:
    """Revoke one of a member's keys from an effective time (may be in the past)."""
    if effective is None:
        at = _now()
    else:
        try:
            at = datetime.fromisoformat(effective)
        except ValueError:
            raise click.BadParameter("not an ISO 8601 time", param_hint="effective") from None
        if at.tzinfo is None:
            raise click.BadParameter("give a UTC offset, e.g. Z", param_hint="effective")
        at = at.astimezone(UTC)
    directory = read_state(netdir)
    member = revoke_key(_find(directory, member_id), fp, reason, at)
    try:
        data = msgspec.json.encode(member)
        decode_as(Member, data, "member", limit=len(data))  # reason length
    except MalformedError as exc:
        raise CliUsageError(f"member: {shape_text(exc)}") from None
    write_state(netdir, _with_member(directory, member))
    emit(
        {
            "member": member_id,
            "key": fp,
            "revoked_at": at.isoformat(),
            "next_version": directory.version,
        },
        as_json,
    )


#: Added to ``relay247 network`` by cli/main.py.
COMMANDS = (rotate_key, revoke)
