"""Reading the web pages in tests: elements by ID, the grid's cells, the visible text.

A small HTML reader on the standard library's parser, enough for the pages' own markup (which
closes every element it opens, but for the void ones).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parts: list[str] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.parts)).strip()

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def find_all(self, tag: str) -> list[Element]:
        out = []
        for child in self.children:
            if child.tag == tag:
                out.append(child)
            out.extend(child.find_all(tag))
        return out


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]
        self.ids: dict[str, Element] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(el)
        if "id" in el.attrs:
            self.ids[el.attrs["id"]] = el
        if tag not in VOID:
            self.stack.append(el)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        for el in self.stack:
            el.parts.append(data)


class Page:
    """One HTML page (or fragment) as the tests look at it."""

    def __init__(self, html: str) -> None:
        reader = _Reader()
        reader.feed(html)
        reader.close()
        self.html = html
        self.root = reader.root
        self.ids = reader.ids

    @property
    def text(self) -> str:
        return self.root.text

    def by_id(self, element_id: str) -> Element:
        return self.ids[element_id]

    def has(self, element_id: str) -> bool:
        return element_id in self.ids

    def grid_targets(self) -> list[str]:
        return [
            tr.attrs["data-target"] for tr in self.root.find_all("tr") if "data-target" in tr.attrs
        ]

    def steps(self) -> list[str]:
        return [th.attrs["data-step"] for th in self.root.find_all("th") if "data-step" in th.attrs]

    def cells(self) -> dict[tuple[str, str], str]:
        """(target, step label) -> cell state, for the grid on the page."""
        steps = self.steps()
        out = {}
        for tr in self.root.find_all("tr"):
            target = tr.attrs.get("data-target")
            if target is None:
                continue
            tds = [td for td in tr.children if td.tag == "td"]
            for step, td in zip(steps, tds, strict=True):
                (state,) = [c.removeprefix("s-") for c in td.classes if c.startswith("s-")]
                out[(target, step)] = state
        return out

    def cell_title(self, target: str, step: str) -> str:
        steps = self.steps()
        for tr in self.root.find_all("tr"):
            if tr.attrs.get("data-target") == target:
                td = [td for td in tr.children if td.tag == "td"][steps.index(step)]
                return td.children[0].attrs["title"]
        raise KeyError((target, step))

    def job_ids(self) -> list[int]:
        return [
            int(tr.attrs["id"].removeprefix("job-"))
            for tr in self.root.find_all("tr")
            if tr.attrs.get("id", "").startswith("job-")
        ]

    def buttons(self) -> list[str]:
        return [b.text for b in self.root.find_all("button")]
