"""The List calls' `filter` strings: `field=value` terms joined by ` AND `."""

from __future__ import annotations

from collections.abc import Collection

from civicscore.errors import InvalidInput, Violation, shown


def parse_filter(text: str, allowed: Collection[str]) -> dict[str, str]:
    """Parse `kind=ward AND active=true` into a dict; unknown fields and bad terms are INVALID_ARGUMENT."""
    terms: dict[str, str] = {}
    if not text.strip():
        return terms
    for term in text.split(" AND "):
        name, sep, value = term.strip().partition("=")
        name, value = name.strip(), value.strip().strip('"')
        if not sep or not name or not value:
            raise InvalidInput([Violation("filter", f"term {shown(term.strip())} is not of the form field=value "
                                          f"(fields: {', '.join(sorted(allowed))}; join terms with ' AND ')",
                                          "INVALID_FILTER")])
        if name not in allowed:
            raise InvalidInput([Violation("filter", f"cannot filter on {shown(name)}; fields: "
                                          f"{', '.join(sorted(allowed))}", "INVALID_FILTER")])
        if name in terms:
            raise InvalidInput([Violation("filter", f"{shown(name)} appears twice in the filter", "INVALID_FILTER")])
        terms[name] = value
    return terms
