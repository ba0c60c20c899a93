"""Progress of a long offline command on stderr: a tqdm bar on a terminal, else a line every 10 s.

Offline commands (``edge score``, ``model evaluate``, ``model explain``) run for a minute or
more; a silent terminal reads as a hang. tqdm comes with the training extra only, so a gateway
install prints plain lines instead; so does a log file or a pipe.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """``progress(done, total, note)`` as work advances; ``close()`` at the end."""

    EVERY_S = 10.0

    def __init__(self, desc: str, unit: str = "it") -> None:
        self.desc, self.unit = desc, unit
        self.bar: Any = None
        self.last = time.monotonic()
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=0, unit=unit, desc=desc, file=sys.stderr, leave=False)
            except ImportError:
                self.bar = None

    def __call__(self, done: int, total: int, note: str = "") -> None:
        if self.bar is not None:
            self.bar.total = total or None  # 0: not known yet
            self.bar.n = done
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.refresh()
            return
        now = time.monotonic()
        if now - self.last >= self.EVERY_S or (total and done >= total):
            self.last = now
            print(self.line(done, total, note), file=sys.stderr, flush=True)

    def line(self, done: int, total: int, note: str) -> str:
        """The plain progress line (where no bar is drawn)."""
        if not total:
            return f"{self.desc}: {done:,} {self.unit}{', ' + note if note else ''}"
        return f"{self.desc}: {100.0 * done / total:.0f}% ({done:,} of {total:,} {self.unit}){', ' + note if note else ''}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
