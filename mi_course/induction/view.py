"""Attention patterns drawn with circuitsvis, offline and at once.

``circuitsvis`` asks the internet (a request to google.com that waits up to a second)
before every render, and inlines its 1.3 MB JavaScript bundle into every output.
Here the bundle is sent to the page once per kernel session, as a plain script
that defines ``window.CircuitsVis``; each view then only carries its own data and
waits for that global. No network is involved, and a notebook with many views
stores the bundle once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from torch import Tensor

_state = {"bundle_sent": False, "views": 0}
MARK, END = "<!--mi-course:circuitsvis-->", "<!--/mi-course:circuitsvis-->"


def _bundle() -> str:
    import circuitsvis

    js = (Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js").read_text(encoding="utf-8")
    return "<script>" + js.replace("</script>", "<\\/script>") + "</script>"


class AttentionView:
    """An HTML attention view for Jupyter; its plain-text form says what it shows."""

    def __init__(self, html: str, summary: str):
        self.html, self.summary = html, summary

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.summary


def attention_view(pattern: Tensor, tokens: Sequence[str], head_names: Sequence[str]) -> AttentionView:
    """Heads' attention patterns as circuitsvis's ``AttentionHeads`` (click a head to enlarge it).

    pattern: [heads, query, key] (one prompt); tokens: the prompt's tokens as strings.
    """
    _state["views"] += 1
    element = f"mi-cv-{_state['views']}"
    props = json.dumps({"attention": [[[round(v, 3) for v in row] for row in head] for head in pattern.tolist()],
                        "tokens": list(tokens), "attentionHeadNames": list(head_names), "maskUpperTri": True})
    bundle = "" if _state["bundle_sent"] else _bundle()
    _state["bundle_sent"] = True
    render = (f'<div id="{element}" style="margin: 10px 0;"></div><script>(function draw(tries) {{'
              f' if (window.CircuitsVis) {{ window.CircuitsVis.render("{element}", window.CircuitsVis.AttentionHeads,'
              f' {props}); }} else if (tries > 0) {{ setTimeout(function () {{ draw(tries - 1); }}, 100); }}'
              f' else {{ document.getElementById("{element}").innerText = "circuitsvis is not loaded in this page: '
              f'run mi_course.induction.view.reset() and this cell again."; }} }})(50);</script>')
    return AttentionView(MARK + bundle + render + END,
                         f"<attention patterns of {len(head_names)} heads over {len(tokens)} tokens>")


def reset() -> None:
    """Send the JavaScript bundle again with the next view (e.g. after reloading the page)."""
    _state["bundle_sent"] = False
