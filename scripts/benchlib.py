"""Shared by the benchmark scripts: ports and recording a section of docs/benchmarks.md."""
import os
import socket

BENCHMARKS = "docs/benchmarks.md"
HEADER = "# Benchmarks\n\nFigures printed by the benchmark commands; each section says how it was produced.\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(title, text):
    """Replaces the section headed `## {title}` (or appends it) and prints the text."""
    print(text)
    existing = open(BENCHMARKS).read() if os.path.exists(BENCHMARKS) else HEADER
    start = existing.find(f"## {title}")
    if start >= 0:
        end = existing.find("\n## ", start + 1)
        existing = existing[:start] + existing[end + 1:] if end >= 0 else existing[:start]
    with open(BENCHMARKS, "w") as f:
        f.write(existing.rstrip() + "\n\n" + text)
