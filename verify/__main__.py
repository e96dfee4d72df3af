"""python -m verify [--profile default|ci|thorough] [--only TEXT] [--list]

Prints one line per check (kind, name, configurations tried, max error,
tolerance, PASS/FAIL, worst configuration) and exits 1 if any check failed.
--only TEXT that no check's name contains runs nothing: it is named, with the
known checks, on stderr, and the exit status is 2. --list prints the names.
"""
import argparse
import sys
import time

from .suite import PROFILES, check_names, matches, run_all


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default",
                        help="hypothesis profile: examples per check, derandomized for CI (default: default)")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only checks whose name contains this text, ignoring case (default: every check)")
    parser.add_argument("--list", action="store_true", help="print every check's name and run nothing")
    args = parser.parse_args(argv)
    names = check_names()
    if args.list:
        print("\n".join(names))
        return 0
    if not any(matches(name, args.only) for name in names):
        print(f"error: --only {args.only!r}: no check's name contains it. The {len(names)} checks:\n  "
              + "\n  ".join(names), file=sys.stderr)
        return 2
    start, failed, count = time.perf_counter(), 0, 0
    for outcome in run_all(args.profile, args.only):
        print(outcome.line(), flush=True)
        failed += not outcome.passed
        count += 1
    print(f"{count - failed}/{count} checks passed in {time.perf_counter() - start:.1f}s")
    return 1 if failed or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
