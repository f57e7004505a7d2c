"""``python -m tests.fuzz TARGET --seconds N``: one target under atheris (libFuzzer).

Coverage-guided: the project's packages are instrumented as the target imports them.
New inputs go to ``tests/fuzz/findings/<target>/corpus/`` (git-ignored; the
committed seeds in ``tests/fuzz/corpus/<target>/`` are read, never written), crashes,
hangs (``--timeout`` seconds per input) and out-of-memory (``--rss-mb``) to
``tests/fuzz/findings/<target>/`` as ``crash-*``, ``timeout-*`` and ``oom-*``. The last
lines printed say how many inputs ran and the coverage (``cov:`` edges, ``ft:`` features).
``--replay FILE...`` runs the target once on each file instead (to reproduce a finding).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

from tests.fuzz._harness import CORPUS, FINDINGS, TARGETS, load

#: the largest input tried: two attachment chunks and some, every other input is smaller
#: the packages whose code is instrumented for coverage
PACKAGES = ("schemas", "protocol", "serving", "relay", "node", "console", "client")
#: libFuzzer's names for its findings' files
_KINDS = frozenset({"crash", "timeout", "oom", "leak", "slow"})
MAX_LEN = {"attachments": 140_000, "codec": 70_000, "node_api": 20_000, "configs": 20_000}


def _supervise(name: str, seconds: int, argv: list[str]) -> int:
    """Run the fuzzer in child processes until ``seconds`` are spent, one more after each
    finding (libFuzzer stops at the first), and print the totals. Exit 1 on any finding."""
    out = FINDINGS / name
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "fuzz.log"
    deadline = time.monotonic() + seconds
    runs = executions = 0
    cov = ft = ""
    with log_path.open("w+") as log:
        while (left := int(deadline - time.monotonic())) > 0:
            start = log.tell()
            proc = subprocess.run(
                [
                    sys.executable,
                    *("-m", "tests.fuzz", name, "--child", "--seconds", str(left)),
                    *_passthrough(argv),
                ],
                stdout=log,
                stderr=log,
                check=False,
            )
            log.seek(start)
            text = log.read()
            runs += 1
            found = re.findall(r"stat::number_of_executed_units: (\d+)", text)
            executions += int(found[-1]) if found else 0
            covs = re.findall(r"cov: (\d+) ft: (\d+)", text)
            if covs:
                cov, ft = covs[-1]
            if proc.returncode == 0:
                break
    findings = sorted(p.name for p in out.iterdir() if p.name.split("-")[0] in _KINDS)
    print(
        f"{name}: {executions} executions in {seconds} s ({runs} run(s)), "
        f"coverage cov={cov} ft={ft}, findings={len(findings)} {' '.join(findings)}"
    )
    return 1 if findings else 0


def _passthrough(argv: list[str]) -> list[str]:
    """The options other than the target and ``--seconds`` (given to each child)."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--seconds":
            skip = True
        elif i > 0 or arg.startswith("-"):
            out.append(arg)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per input")
    parser.add_argument("--rss-mb", type=int, default=2048)
    parser.add_argument("--replay", nargs="*", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay is None and not args.child:
        return _supervise(args.target, args.seconds, sys.argv[2:])
    if args.replay is not None:
        target = load(args.target)
        for name in args.replay:
            with open(name, "rb") as f:
                target.one(f.read())
            print(f"{name}: ok")
        return 0
    import atheris

    # Coverage of the project's own code only (instrumenting the standard library and
    # every dependency takes minutes on a loaded machine and guides nothing of ours).
    with atheris.instrument_imports(include=list(PACKAGES)):
        target = load(args.target)
    out = FINDINGS / args.target
    work = out / "corpus"
    work.mkdir(parents=True, exist_ok=True)
    libfuzzer = [
        sys.argv[0],
        f"-max_total_time={args.seconds}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        f"-max_len={MAX_LEN.get(args.target, 4096)}",
        f"-artifact_prefix={out}/",
        "-print_final_stats=1",
        str(work),
        str(CORPUS / args.target),
    ]
    atheris.Setup(libfuzzer, target.one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
