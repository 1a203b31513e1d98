"""Prints benchmark medians and bcai-vs-baseline ratios from pytest-benchmark's
JSON, as Markdown rows for docs/benchmarks.md.

Ratio = baseline median / bcai median (higher is better for bcai); for a
throughput target this equals bcai's throughput over the baseline's. A
benchmark that times only part of each round (network set-up excluded) puts
its own median in extra_info["median_s"], which is used instead."""

from __future__ import annotations

import json
import platform
import sys
from collections import defaultdict
from pathlib import Path


def main(path: str) -> int:
    report = json.loads(Path(path).read_text())
    groups: dict[str, list[dict]] = defaultdict(list)
    for b in report["benchmarks"]:
        if "median_s" in b["extra_info"]:
            b["stats"]["median"] = b["extra_info"]["median_s"]
        groups[b["group"]].append(b)
    cpu = report.get("machine_info", {}).get("cpu", {}).get("brand_raw", platform.processor())
    print(f"date: {report['datetime'][:10]}  machine: {cpu}, {platform.machine()}")
    print("| group | benchmark | median | ratio vs it | target |")
    print("|---|---|---|---|---|")
    failed = False
    for group, items in sorted(groups.items()):
        ours = [b for b in items if b["extra_info"].get("role") == "bcai"]
        for b in sorted(items, key=lambda b: b["stats"]["median"]):
            median = b["stats"]["median"]
            ratio = target = ""
            if ours and b not in ours:
                r = median / ours[0]["stats"]["median"]
                ratio = f"{r:.2f}x"
                t = ours[0]["extra_info"].get("target")
                role = b["extra_info"].get("role", "")
                if t is not None and role in ("baseline", "baseline-int"):
                    goal = 50 if role == "baseline-int" and group.startswith("int8") else t
                    target = f">= {goal:.3g}x " + ("ok" if r >= goal else "MISSED")
                    failed |= r < goal
            print(f"| {group} | {b['name']} | {median * 1e3:.3f} ms | {ratio} | {target} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
