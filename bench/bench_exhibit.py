"""Court exhibit benchmark (issue 18 §1): a 50-message case as a PDF/A-3u exhibit, time
and size as ratios to the JSON evidence bundle of the same case in the same run.

Run: python bench/bench_exhibit.py [--messages 50] [--rounds 3]   (about a minute here)

The case runs through a real relay on loopback (tests/support/exhibit.py: each message
sealed, delivered, receipted and acknowledged; both members witness the checkpoint).
Measured, best of ``--rounds`` each, wall and process-CPU seconds side by side:

1. The JSON export: every log leaf and inclusion proof read from the relay, and the
   bundle built (what ``node export-case --out`` does once the node holds the messages).
2. The exhibit from that bundle (``export-case --pdf``): the bundle verified with its own
   keys, laid out by WeasyPrint, PDF/A parts and the bundle embedded; in English and in
   Arabic (shaped right-to-left text is the slower case).
3. ``verify-bundle`` on each: the JSON (B1-B5), the PDF (X1-X5: B1-B5 plus a fresh
   rendering compared page by page).

Sizes: the PDF against the JSON (the PDF embeds the JSON, deflated).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audit.exhibit import first_difference, read_exhibit
from console._exhibit import render_exhibit
from protocol.evidence import verify_bundle
from tests.support.exhibit import case_bundle

ZONE = "Europe/Paris"


def best(rounds: int, work: Callable[[], object]) -> tuple[float, float]:
    """The best (wall, CPU) seconds of ``rounds`` runs of ``work``."""
    runs = []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    exports = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            exports.append(asyncio.run(case_bundle(Path(tmp) / str(i), n=args.messages)))
    bundle = exports[-1]
    json_wall = min(b.export_wall for b in exports)
    json_cpu = min(b.export_cpu for b in exports)
    data = bundle.data
    now = datetime.now(UTC)
    print(f"case of {args.messages} messages; JSON bundle {len(data):,} bytes")
    print(f"{'step':44} {'wall s':>8} {'CPU s':>8} {'x JSON wall':>12} {'x JSON CPU':>11}")
    row = "{:44} {:8.3f} {:8.3f} {:12.1f} {:11.1f}"
    print(row.format("JSON export (leaves, proofs, bundle)", json_wall, json_cpu, 1, 1))
    pdfs = {}
    for lang in ("en", "ar"):
        pdfs[lang] = render_exhibit(data, language=lang, zone=ZONE)

        def render(lang: str = lang) -> bytes:
            return render_exhibit(data, language=lang, zone=ZONE)

        wall, cpu = best(args.rounds, render)
        name = f"PDF exhibit ({lang}) from the bundle"
        print(row.format(name, wall, cpu, wall / json_wall, cpu / json_cpu))
    v_wall, v_cpu = best(
        args.rounds,
        lambda: verify_bundle(data, trust_root=None, now=now, log_key=bundle.log_key),
    )
    print(row.format("verify the JSON bundle (B1-B5)", v_wall, v_cpu, v_wall / json_wall,
                     v_cpu / json_cpu))  # fmt: skip

    def verify_pdf() -> None:
        x = read_exhibit(pdfs["en"])
        verify_bundle(x.bundle, trust_root=None, now=now, log_key=bundle.log_key)
        fresh = render_exhibit(x.bundle, language="en", zone=ZONE)
        assert first_difference(pdfs["en"], fresh) is None

    p_wall, p_cpu = best(args.rounds, verify_pdf)
    print(row.format("verify the PDF (X1-X5, en)", p_wall, p_cpu, p_wall / json_wall,
                     p_cpu / json_cpu))  # fmt: skip
    print(f"{'size':44} {'bytes':>8} {'x JSON':>8}")
    print(f"{'JSON bundle':44} {len(data):8,} {1:8.2f}")
    for lang, pdf in pdfs.items():
        pages = read_exhibit(pdf).pages
        print(f"{f'PDF exhibit ({lang}, {pages} pages)':44} {len(pdf):8,} "
              f"{len(pdf) / len(data):8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
