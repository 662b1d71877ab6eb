"""Sphinx extension: a bibliography style whose labels match the author-year citations.

The text cites author-year ("Tenney et al., 2019a"); pybtex's default ``alpha`` labels
("TXC+9a") do not match them. Style ``bertdrift`` labels each entry "First author [& Second |
et al.] year" from its ``year`` field (two papers of one author and year carry ``2019a``/``2019b``
there, so the text and the list agree) and sorts by author, year and title.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _last(person: Any) -> str:
    return " ".join(person.last_names).replace("{", "").replace("}", "")


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries: Any) -> Iterator[str]:
        for entry in sorted_entries:
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            if not persons:
                who = entry.key
            elif len(persons) == 1:
                who = _last(persons[0])
            elif len(persons) == 2:
                who = f"{_last(persons[0])} & {_last(persons[1])}"
            else:
                who = f"{_last(persons[0])} et al."
            yield f"{who} {entry.fields.get('year', '')}".strip()


class Style(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app: Any) -> dict[str, Any]:
    register_plugin("pybtex.style.formatting", "bertdrift", Style)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
