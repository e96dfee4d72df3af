"""python -m verify [--profile default|ci|thorough] [--only NAME]

Prints one line per check (kind, name, configurations tried, max error,
tolerance, PASS/FAIL, worst configuration) and exits 1 if any check failed.
"""
import argparse
import sys
import time

from .suite import PROFILES, run_all


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default",
                        help="hypothesis profile: examples per check, derandomized for CI")
    parser.add_argument("--only", help="run only checks whose name contains this text")
    args = parser.parse_args(argv)
    start, failed, count = time.perf_counter(), 0, 0
    for outcome in run_all(args.profile, args.only):
        print(outcome.line(), flush=True)
        failed += not outcome.passed
        count += 1
    print(f"{count - failed}/{count} checks passed in {time.perf_counter() - start:.1f}s")
    return 1 if failed or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
