"""The report: the rows side by side as a table, and as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..files import atomic_write
from .cases import SYSTEMS
from .machine import describe_sgemm
from .pinning import PINNED_SEPARATOR


def _fmt_time(us: float) -> str:
    for limit, scale, unit in (
        (1e-3, 1e3, "ns"),
        (1.0, 1.0, "µs"),
        (1e3, 1.0, "µs"),
        (1e6, 1e-3, "ms"),
    ):
        if us < limit:
            return f"{us * scale:.3g} {unit}"
    return f"{us * 1e-6:.3g} s"


def format_ratio(ratio: float) -> str:
    """A ratio to fastnn as the table prints it: "1.00x", "21.37x", "412x"."""
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def format_table(rows: Sequence[dict]) -> str:
    """The rows side by side: per workload, each system's median time per unit (a
    sample, a row, or a whole run) and its ratio to fastnn, with the pinned threads."""
    if not rows:
        return "no benchmark rows"
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    systems += [s for s in dict.fromkeys(r["system"] for r in rows) if s not in systems]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    cell: dict[tuple[str, str], str] = {}
    notes: list[str] = []
    for r in rows:
        status = r.get("status", "ok")
        if status != "ok":
            text = "skipped" if status == "skipped" else status.upper()
            notes.append(f"{r['workload']} / {r['system']}: {status}: {r.get('notes', '')}")
        elif r.get("unit_us") is None:
            text = f"{r['median_s']:.3g} s"
        else:
            ratio = r.get("ratio")
            text = _fmt_time(r["unit_us"])
            if ratio is not None:
                text += f" ({format_ratio(ratio)})"
            if r.get("notes"):
                notes.append(f"{r['workload']} / {r['system']}: {r['notes']}")
        if r.get("accuracy") is not None:
            notes.append(f"{r['workload']} / {r['system']}: test accuracy {r['accuracy']:.4f}")
        cell[(r["workload"], r["system"])] = text
    unit = {r["workload"]: r.get("unit", "") for r in rows}
    width = max(len(w) for w in workloads) + 2
    widths = [max(len(s), *(len(cell.get((w, s), "")) for w in workloads)) + 2 for s in systems]
    lines = []
    pinned = list(dict.fromkeys(r.get("pinned", "") for r in rows if r.get("pinned")))
    threads = sorted({r.get("threads") for r in rows if r.get("threads") is not None})
    lines.append(f"fastnn benchmarks, threads={', '.join(map(str, threads))}; pinned:")
    for p in pinned:
        lines.extend(f"  {part}" for part in p.split(PINNED_SEPARATOR))
    rates = [r["sgemm"] for r in rows if r.get("sgemm")]
    if rates:
        lines.append(describe_sgemm(rates[0]))
    lines.append(
        "cells: median time per unit (sample, row or whole run) over the repeats, and "
        "(time / fastnn's time)x"
    )
    lines.append("")
    header = "workload".ljust(width) + "unit".ljust(8)
    header += "".join(s.rjust(w) for s, w in zip(systems, widths, strict=True))
    lines.append(header)
    lines.append("-" * len(header))
    for w in workloads:
        line = w.ljust(width) + unit[w].ljust(8)
        line += "".join(cell.get((w, s), "").rjust(n) for s, n in zip(systems, widths, strict=True))
        lines.append(line)
    about = {r["workload"]: r["about"] for r in rows if r.get("about")}
    notes = [f"{w}: {text}" for w, text in about.items()] + notes
    if notes:
        lines.append("")
        lines.append("notes:")
        lines.extend(f"  {note}" for note in notes)
    return "\n".join(lines)


def write_json(rows: Sequence[dict], path) -> None:
    """Write the rows to ``path`` as JSON, atomically (a temporary file, then a rename)."""
    data = json.dumps(list(rows), indent=2, allow_nan=False).encode()
    atomic_write(path, lambda f: f.write(data))
