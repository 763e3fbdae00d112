"""Coverage-guided fuzzing of the answer path with atheris (libFuzzer for Python).

    python -m tests.fuzz_atheris -runs=1000000 [-seed=N]        (make fuzz)

The core modules are instrumented, so inputs that reach new branches of the scanner, the
complete parser fallback, the lookup and the encoder are kept and mutated further, starting
from valid queries. Each input goes through `handle()` over UDP and TCP and through the UDP
front; the checks are those of tests/fuzz.py (no exception, a well-formed reply, no
SERVFAIL, no UDP reply larger than the query allowed). A finding stops the run with the input.
"""

from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["gslb.core"]):
    import gslb.core.answer
    import gslb.core.cookies
    import gslb.core.front
    import gslb.core.rrl  # noqa: F401  (instrumented before tests.fuzz imports them)

from tests.fuzz import Target, example_snapshot, seeds

TARGET = Target(example_snapshot())


def one_input(data: bytes) -> None:
    for client in ("198.51.100.7", "2001:db8::7"):
        problem = TARGET.probe(data, client)
        if problem:
            raise AssertionError(f"{problem}: {data.hex()}")


def main() -> None:
    corpus = Path(tempfile.mkdtemp(prefix="gslb-corpus-"))
    for i, wire in enumerate(seeds(random.Random(1))):
        (corpus / f"seed-{i}").write_bytes(wire)
    argv = (
        [*sys.argv, str(corpus)]
        if not any(not a.startswith("-") for a in sys.argv[1:])
        else sys.argv
    )
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
