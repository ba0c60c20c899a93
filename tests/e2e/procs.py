"""Finding processes by a marker in their environment: proof that nothing outlived a run."""

from __future__ import annotations

from pathlib import Path


def processes_with_marker(name: str, value: str) -> list[int]:
    """Pids of live processes whose environment holds ``name=value`` (children inherit it)."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found
