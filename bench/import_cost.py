"""Import cost of the ARM client: shared/integrations/arm.py (azure-core pipeline) against the generated
azure-mgmt-apimanagement, as cold-start time of `function_app` plus what the first invocation with
ARM builds, and as installed size. Each time is the median of BENCH_IMPORT_RUNS (default 15) fresh
interpreters, timed with perf_counter inside the child, so interpreter start-up is left out of
import/build/total (the `process` column is the child's whole wall time, start-up included)."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "15"))
SDK = "azure-mgmt-apimanagement"
WATCH = ("shared.integrations.arm", "azure.identity", "msal", "azure.mgmt.core", "azure.mgmt.apimanagement")
GROUPS = ("user", "api", "api_release", "product", "subscription", "gateway", "gateway_api",
          "gateway_hostname_configuration", "gateway_certificate_authority", "backend")
CHILD = """import json, sys, time
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
net = []
sys.addaudithook(lambda event, args: net.append(event) if event in ("socket.connect", "socket.getaddrinfo") else None)
{build}
t2 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "build": t2 - t1, "modules": len(sys.modules), "net": len(net),
                  "loaded": [m for m in {watch!r} if m in sys.modules]}}))
"""
CREDENTIAL = "from azure.identity import ManagedIdentityCredential"
ROWS: list[tuple[str, str, str]] = [
    ("azure.functions + azure.data.tables", "import azure.functions, azure.data.tables", ""),
    ("function_app", "import function_app", ""),
    ("function_app + ArmClient", f"import function_app\nfrom shared.integrations.arm import ArmClient\n{CREDENTIAL}",
     "client = ArmClient(ManagedIdentityCredential(), 'https://management.azure.com')"),
    (f"function_app + ApiManagementClient, {len(GROUPS)} groups",
     f"import function_app\nfrom azure.mgmt.apimanagement import ApiManagementClient\n{CREDENTIAL}",
     f"client = ApiManagementClient(ManagedIdentityCredential(), '00000000-0000-0000-0000-000000000000')\n"
     f"groups = [getattr(client, g) for g in {GROUPS!r}]"),
]


def child(imports: str, build: str) -> dict[str, Any]:
    code = CHILD.format(imports=imports, build=build or "pass", watch=WATCH)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"child failed:\n{code}\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    figures["process"] = time.perf_counter() - start
    figures["total"] = figures["import"] + figures["build"]
    return figures


def paired(these: list[dict[str, Any]], those: list[dict[str, Any]]) -> float:
    """ms: the median over rounds of `these` less `those` in the same round, which cancels most of a round's noise."""
    return float(statistics.median(a["total"] - b["total"] for a, b in zip(these, those, strict=True))) * 1000


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names: Iterable[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions `names` need, themselves included (extras left out)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [norm(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = seen[name] = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        todo += [norm(m[0]) for r in dist.requires or [] if not re.search(r"extra\s*==", r) and (m := re.match(r"[A-Za-z0-9._-]+", r))]
    return seen


def size(dist: metadata.Distribution) -> tuple[int, int, int]:
    """Bytes, files and .py modules installed, per the distribution's RECORD (byte code included)."""
    paths = [Path(str(dist.locate_file(f))) for f in dist.files or []]
    return sum(p.stat().st_size for p in paths if p.is_file()), len(paths), sum(p.suffix == ".py" for p in paths)


def main() -> None:
    try:
        sdk_version: str | None = metadata.version(SDK)
    except metadata.PackageNotFoundError:
        sdk_version = None
    rows = ROWS if sdk_version else ROWS[:3]
    for _, imports, build in rows:  # a warm-up each, so that writing byte code is not timed
        child(imports, build)
    runs: list[list[dict[str, Any]]] = [[] for _ in rows]
    for _ in range(RUNS):  # round robin, so that a slow spell touches every row alike
        for i, (_, imports, build) in enumerate(rows):
            runs[i].append(child(imports, build))

    print(f"\nimport cost: median of {RUNS} fresh interpreters, ms (perf_counter in the child; process = its whole wall time)")
    print(f"  {'':<50}{'import':>8}{'build':>8}{'total':>8}{'+app':>8}{'process':>9}{'modules':>9}{'net':>5}")
    for n, ((label, _, _), figures) in enumerate(zip(rows, runs, strict=True), 1):
        med = {k: statistics.median(f[k] for f in figures) * 1000 for k in ("import", "build", "total", "process")}
        extra = f"{paired(figures, runs[1]):>8.1f}" if n > 2 else ""
        print(f"  {n} {label:<48}{med['import']:>8.1f}{med['build']:>8.1f}{med['total']:>8.1f}{extra:>8}{med['process']:>9.1f}"
              f"{figures[-1]['modules']:>9}{max(f['net'] for f in figures):>5}")
    if sdk_version:
        print(f"  ApiManagementClient over ArmClient at the first invocation: {paired(runs[3], runs[2]):+.1f} ms (paired median)")
    else:
        print("  4 function_app + ApiManagementClient             not installed (make bench installs it)")
    loaded = runs[1][-1]["loaded"]
    print("  after `import function_app`: " + ", ".join(f"{m} {'yes' if m in loaded else 'no'}" for m in WATCH))
    print("  (+app: total less row 2's in the same round, median: the first invocation's share; net: socket connects/lookups in build)")

    print("\ninstalled size, per RECORD (byte code included)")
    print(f"  {'':<38}{'kB':>10}{'files':>7}{'.py':>6}")
    arm = ROOT / "shared" / "integrations" / "arm.py"
    lines: list[tuple[str, tuple[int, int, int]]] = [("shared/integrations/arm.py", (arm.stat().st_size, 1, 1))]
    if sdk_version:
        have = closure(norm(line.split("==")[0].strip()) for line in (ROOT / "requirements.txt").read_text().splitlines()
                       if line.strip() and not line.startswith("#"))
        needs = closure([SDK])
        added = {name: dist for name, dist in needs.items() if name not in have}
        lines += [(f"{name} {dist.version}", size(dist)) for name, dist in sorted(added.items(), key=lambda item: item[0] != norm(SDK))]
        sums = [sum(column) for column in zip(*(stat for _, stat in lines[1:]), strict=True)]
        lines.append((f"together ({len(added)} packages)", (sums[0], sums[1], sums[2])))
        reused = sorted(set(needs) & set(have))
    for label, (size_b, files, modules) in lines:
        print(f"  {label:<38}{size_b / 1e3:>10,.1f}{files:>7}{modules:>6}")
    if sdk_version:
        print(f"  (its other dependencies are installed for requirements.txt anyway: {', '.join(reused)})")
    else:
        print(f"  {SDK:<38}not installed (make bench installs it)")


if __name__ == "__main__":
    main()
