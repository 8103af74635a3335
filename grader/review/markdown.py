"""Student Markdown -> HTML that is safe to put in the TA's page.

Three layers, because answers are written by students and read by a TA with the gradebook open:

1. markdown-it with raw HTML off: ``<script>`` or ``<img onerror=...>`` typed into an answer is
   shown as text, which is also what the TA needs to see (the student wrote it).
2. nh3 (the ammonia sanitiser) over the result, with a small allowlist of tags and attributes,
   in case a Markdown construct ever yields markup the allowlist does not expect.
3. The page's Content-Security-Policy (``grader.review.app``) allows scripts from the app's own
   static files only, so an inline script that slipped through would still not run.

Math (``$...$``, ``$$...$$``) is kept as escaped TeX inside
``<span class="math inline">`` / ``<div class="math display">`` and typeset in the browser by the
bundled KaTeX; without KaTeX the TeX source stays readable. A bare ``\\begin{...}`` outside dollars
is left as text: in students' notebooks it mostly sits inside a ``$...$`` that spans lines, which a
block rule for environments would cut apart. Images become text: the page loads
nothing from outside, and the TA still sees that an image was there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markupsafe import Markup
from mdit_py_plugins.dollarmath import dollarmath_plugin

_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "span", "div",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "ol": {"start"},
}  # no style attributes: the CSP forbids inline styles, and alignment is not worth a hole
_MAX_CHARS = 200_000  # a pasted log must not stall the page


def _math(display: bool, block: bool) -> Any:
    def render(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
        tag = "div" if block else "span"
        kind = "display" if display else "inline"
        return f'<{tag} class="math {kind}">{escapeHtml(tokens[idx].content.strip())}</{tag}>' + ("\n" if block else "")

    return render


def _image(self: Any, tokens: Sequence[Any], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    alt = "".join(child.content for child in token.children or ())
    return f'<span class="image-ref">[image: {escapeHtml(alt)} {escapeHtml(str(token.attrGet("src") or ""))}]</span>'


@functools.cache
def _parser() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
        .enable(["table", "strikethrough"])
        .use(dollarmath_plugin, allow_space=True, allow_digits=True, double_inline=True)
    )
    md.add_render_rule("math_inline", _math(display=False, block=False))
    md.add_render_rule("math_inline_double", _math(display=True, block=False))
    md.add_render_rule("math_block", _math(display=True, block=True))
    md.add_render_rule("math_block_label", _math(display=True, block=True))
    md.add_render_rule("image", _image)
    return md


@functools.lru_cache(maxsize=4096)
def render_markdown(text: str) -> Markup:
    """Sanitised HTML for a student's (or the reference's) Markdown; safe to embed as is."""
    if len(text) > _MAX_CHARS:
        text = text[:_MAX_CHARS] + "\n\n[... cut: the answer is longer than the page shows]"
    html = _parser().render(text)
    clean = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return Markup(clean)
