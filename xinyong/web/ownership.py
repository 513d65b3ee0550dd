"""The ownership and control graph of an entity's page (public and console), drawn on the server.

The data is `services.resolution.entities.ownership` (persons named only where the pack gives a
legal basis, ID numbers never on public pages); this module only words and draws it."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from xinyong.domain import formats
from xinyong.web.charts import GraphNode, ownership_graph

OWNERS = ("shareholder", "actual_controller")  # drawn above the entity, arrows pointing to it


def relation_words(gettext: Any) -> dict[str, str]:
    return {"shareholder": gettext("Shareholder"), "actual_controller": gettext("Actual controller"),
            "principal": gettext("Principal"), "key_staff": gettext("Key staff"),
            "legal_representative": gettext("Legal representative")}


def ownership_chart(gettext: Any, lang: str, name: str, data: dict[str, Any], base: str = "/entities/") -> Markup | None:
    """The graph, or None when nothing is known of the entity's owners, officers or holdings; `base`:
    where a firm's box links to (its public page, or the console's)."""
    if not data["parties"] and not data["holdings"]:
        return None
    words = relation_words(gettext)
    owners: list[GraphNode] = []
    below: list[GraphNode] = []
    for party in data["parties"]:
        caption = words.get(party["relation"], party["relation"])
        if party["relation"] == "key_staff" and party["role"]:
            caption = f"{caption} · {party['role']}"
        if party["share"] is not None:
            caption = f"{caption} · {formats.capital_share(party['share'], lang)}"
        shown = party["name"] or gettext("A natural person")
        href = f"{base}{party['entity']}" if party["entity"] else None
        node = GraphNode(shown, caption, href, dashed=party["relation"] not in OWNERS)
        (owners if party["relation"] in OWNERS else below).append(node)
    for holding in data["holdings"]:
        caption = gettext("Holds a share")
        if holding["share"] is not None:
            caption = gettext("Holds %(share)s") % {"share": formats.capital_share(holding["share"], lang)}
        below.append(GraphNode(holding["name"] or holding["entity"], caption, f"{base}{holding['entity']}"))
    return ownership_graph("ownership-graph", gettext("Ownership and control"),
                           gettext("Who owns and controls %(name)s, its officers, and the firms it holds")
                           % {"name": name}, name, owners, below)
