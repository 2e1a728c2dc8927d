#!/usr/bin/env python3
"""Sums JUnit XML reports into the one closing line of `make test`.

    junit_summary.py REPORT.xml...

Prints one line per report, then `tests: N passed, N failed` as the very last line. Test cases
are counted one by one (a <testcase> with a <failure> or <error> child failed, one with
<skipped> was skipped), because nextest, pytest and node's junit reporter nest <testsuite>
elements and fill in their count attributes differently.

Exit status: 0 when at least one test ran and none failed; 1 otherwise (a run of zero tests
proves nothing); a missing or unreadable report counts as a failure too.
"""

import sys
import xml.etree.ElementTree as ET


def count(path):
    """Returns (passed, failed, skipped) for one report."""
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def main(paths):
    total_passed = total_failed = 0
    broken_reports = 0
    for path in paths:
        try:
            passed, failed, skipped = count(path)
        except (OSError, ET.ParseError) as error:
            print(f"junit: {path}: unreadable report ({error})")
            broken_reports += 1
            continue
        print(f"junit: {path}: {passed} passed, {failed} failed, {skipped} skipped")
        total_passed += passed
        total_failed += failed
    print(f"tests: {total_passed} passed, {total_failed} failed")
    ok = total_failed == 0 and broken_reports == 0 and total_passed > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
