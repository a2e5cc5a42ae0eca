"""Judges a conformance run check by check against a baseline of expected failures.

The suite's own --expected-failures works per scenario, so one fixture-dependent check would
hide every other check of its scenario. This reads each scenario's checks.json under RESULTS
and compares the failing checks (status FAILURE or WARNING) with BASELINE, a JSON file:

    {"expected": [{"reason": "why these cannot pass", "checks": ["scenario/check-id", ...]}]}

where a scenario or a check id may be a shell-style pattern (`tasks-*/*`). It prints one line
per scenario and exits 1 when a failing check matches no pattern (a new failure) or a pattern
matches no failing check (the baseline is stale and must shrink), else 0.

Usage: python compare_checks.py RESULTS BASELINE
"""

import fnmatch
import json
import re
import sys
from pathlib import Path

FAILING = {"FAILURE", "WARNING"}
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def main():
    results, baseline = Path(sys.argv[1]), Path(sys.argv[2])
    patterns = [(pattern, entry["reason"]) for entry in json.loads(baseline.read_text())["expected"]
                for pattern in entry["checks"]]
    used = set()
    new_failures = []
    scenarios = 0
    for directory in sorted(results.iterdir()):
        match = RESULT_DIR.match(directory.name)
        if not match:
            continue
        scenarios += 1
        scenario = match["scenario"]
        checks = json.loads((directory / "checks.json").read_text())
        passed = sum(1 for check in checks if check["status"] == "SUCCESS")
        failing = [check for check in checks if check["status"] in FAILING]
        unexpected = []
        for check in failing:
            name = f"{scenario}/{check['id']}"
            matched = [pattern for pattern, _ in patterns if fnmatch.fnmatchcase(name, pattern)]
            used.update(matched)
            if not matched:
                unexpected.append(check)
        mark = "ok" if not unexpected else "NEW FAILURE"
        print(f"{mark:11} {scenario}: {passed} passed, {len(failing)} failing "
              f"({len(failing) - len(unexpected)} expected)")
        for check in unexpected:
            new_failures.append(f"{scenario}/{check['id']}")
            print(f"            {check['id']} [{check['status']}]: {check.get('errorMessage', '')}")
    stale = [(pattern, reason) for pattern, reason in patterns if pattern not in used]
    for pattern, reason in stale:
        print(f"STALE       {pattern} no longer fails ({reason}); remove it from {baseline.name}")
    if scenarios == 0:
        print(f"no scenario results under {results}")
        return 1
    print(f"{scenarios} scenarios: {len(new_failures)} new failures, {len(stale)} stale baseline entries")
    return 1 if new_failures or stale else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
