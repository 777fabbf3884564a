"""Where the time goes: pyinstrument sessions reduced to the top functions by own time."""

from __future__ import annotations

from collections import defaultdict
from types import TracebackType
from typing import Any

TOP = 15


def top_functions(session_root: Any, top: int = TOP) -> list[dict[str, object]]:
    """Own (self) time per function over the whole call tree, largest first."""
    own: dict[tuple[str, str, int], float] = defaultdict(float)
    total = session_root.time if session_root is not None else 0.0
    stack = [session_root] if session_root is not None else []
    while stack:
        frame = stack.pop()
        children = list(frame.children)
        if frame.function.startswith("["):  # pyinstrument's synthetic frames ([self], [await])
            continue
        real = [c for c in children if not c.function.startswith("[")]
        key = (frame.function, frame.file_path_short or "", frame.line_no or 0)
        own[key] += max(0.0, frame.time - sum(c.time for c in real))
        stack.extend(real)
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:top]
    rows = [
        {
            "function": f,
            "file": p,
            "line": n,
            "seconds": round(t, 3),
            "share": round(t / total, 3) if total else 0.0,
        }
        for (f, p, n), t in ranked
    ]
    packages: dict[str, float] = defaultdict(float)
    for (_f, p, _n), t in own.items():
        packages[_package(p)] += t
    for name, t in sorted(packages.items(), key=lambda kv: -kv[1])[:8]:
        rows.append(
            {
                "function": "*",
                "file": name,
                "line": 0,
                "seconds": round(t, 3),
                "share": round(t / total, 3) if total else 0.0,
                "package": True,
            }
        )
    return rows


def _package(path: str) -> str:
    """``feedparser/mixin.py`` → ``feedparser``; ``bot/text.py`` → ``bot/text.py``."""
    if path.startswith("bot/"):
        return path
    if path.startswith("<"):
        return "C builtins"
    head = path.split("/", 1)[0]
    return head.removesuffix(".py")


class Section:
    """``with Section(Profiler, name, results):`` profiles the block into ``results[name]``.

    Blocks of one name accumulate (the last session's tree is reduced and merged).
    """

    def __init__(self, profiler_cls: Any, name: str, results: dict[str, list[dict[str, object]]]):
        self._profiler = profiler_cls(interval=0.001, async_mode="enabled")
        self._name = name
        self._results = results

    def __enter__(self) -> Section:
        self._profiler.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._profiler.stop()
        rows = top_functions(session.root_frame())
        if self._name in self._results:  # accumulate: sum seconds per function or package
            merged: dict[tuple[object, ...], dict[str, object]] = {}
            for r in [*self._results[self._name], *rows]:
                key = (r["function"], r["file"], r["line"], bool(r.get("package")))
                if key in merged:
                    merged[key]["seconds"] = round(
                        float(merged[key]["seconds"]) + float(r["seconds"]), 3
                    )  # type: ignore[arg-type]
                else:
                    merged[key] = dict(r)
            rows = sorted(merged.values(), key=lambda r: -float(r["seconds"]))  # type: ignore[arg-type]
        self._results[self._name] = rows


def profile(name: str, results: dict[str, list[dict[str, object]]]) -> Section:
    from pyinstrument import Profiler

    return Section(Profiler, name, results)
