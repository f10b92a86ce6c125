"""Turn an HTML mail body into readable plain text.

Used when a mail has no text part. Quoted history keeps its `> ` markers (blockquote, Gmail's
`gmail_quote`, Apple's `type=cite`, Outlook's reply divider) so the reply splitter and the
command reader treat HTML-only replies like plain ones. Scripts, styles and heads vanish;
links keep their target when it differs from the text. Work and output are bounded.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

MAX_CHARS = 1_000_000
MAX_DEPTH = 200  # quote nesting deeper than this is flattened

_BLOCK = frozenset({
    "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "main", "nav", "ol", "p",
    "pre", "section", "table", "tr", "ul",
})
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table"})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "object",
                   "iframe", "svg", "xml", "o:p"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col",
                   "embed", "source", "track", "wbr"})


def _is_quote(tag: str, attrs: dict[str, str]) -> bool:
    classes = attrs.get("class", "").lower().split()
    return (tag == "blockquote" or "gmail_quote" in classes or "yahoo_quoted" in classes
            or attrs.get("type", "").lower() == "cite")


def _is_outlook_divider(attrs: dict[str, str]) -> bool:
    ident = attrs.get("id", "").lower()
    return ident in ("divrplyfwdmsg", "appendonsend") or ident.startswith("x_divrplyfwdmsg")


class _Text(HTMLParser):
    def __init__(self, max_chars: int, images: dict[str, str] | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.max_chars = max_chars
        self.images = images or {}       # content-id -> attachment name
        self.size = 0
        self.lines: list[tuple[int, str]] = []  # (quote depth, text)
        self.current: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, opened a quote)
        self.depth = 0
        self.skip = 0
        self.pre = 0
        self.href: list[str | None] = []
        self.link_text: list[str] = []
        self.full = False

    # -- output ------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        if self.full or not text:
            return
        if self.size + len(text) > self.max_chars:
            text = text[: max(0, self.max_chars - self.size)]
            self.full = True
        self.size += len(text)
        self.current.append(text)

    def _newline(self) -> None:
        line = "".join(self.current)
        line = line if self.pre else re.sub(r"[ \t\u00a0]+", " ", line).strip()
        self.lines.append((min(self.depth, MAX_DEPTH), line))
        self.current = []

    def _block_break(self) -> None:
        if "".join(self.current).strip():
            self._newline()

    # -- parser callbacks ----------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        attrs = {k.lower(): (v or "") for k, v in attrs_list}
        if tag in _SKIP:
            if tag not in _VOID:
                self.skip += 1
            return
        if self.skip:
            return
        if tag == "br":
            self._newline()
            return
        if tag == "hr":
            self._block_break()
            self.lines.append((self.depth, "________________________________"))
            return
        if tag in _VOID:
            src = (attrs.get("src") or "").strip()
            if tag == "img" and src[:4].lower() == "cid:":
                # an inline image: name the attachment it shows, so the text says where
                cid = src[4:].strip("<>")
                self._emit(f"[image: {self.images.get(cid) or attrs.get('alt') or cid}]")
            elif tag == "img" and attrs.get("alt"):
                self._emit(f"[{attrs['alt']}]")
            return
        quote = _is_quote(tag, attrs)
        if _is_outlook_divider(attrs):
            self._block_break()
            self.lines.append((self.depth, "________________________________"))
        if tag in _BLOCK or quote or tag in ("li", "blockquote"):
            self._block_break()
        if tag == "pre":
            self.pre += 1
        if tag == "li":
            self._emit("- ")
        if tag in ("td", "th"):
            self._emit(" ")
        if tag == "a":
            self.href.append(attrs.get("href"))
            self.link_text.append("")
        self.stack.append((tag, quote))
        if quote:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip or tag in _VOID:
            return
        # close up to the matching open tag (tolerates sloppy HTML)
        for n in range(len(self.stack) - 1, -1, -1):
            if self.stack[n][0] == tag:
                break
        else:
            return
        while len(self.stack) > n:
            open_tag, quote = self.stack.pop()
            if open_tag == "a" and self.href:
                href = self.href.pop()
                shown = self.link_text.pop().strip()
                if href and href.startswith(("http:", "https:")) and href != shown:
                    self._emit(f" <{href}>")
            if open_tag in _BLOCK or quote or open_tag == "li":
                self._block_break()
            if open_tag in _PARAGRAPH:
                self.lines.append((self.depth - quote, ""))
            if open_tag == "pre":
                self.pre = max(0, self.pre - 1)
            if quote:
                self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            for n, piece in enumerate(data.split("\n")):
                if n:
                    self._newline()
                self._emit(piece)
        else:
            self._emit(data.replace("\n", " ").replace("\r", " "))
        if self.link_text:
            self.link_text[-1] += data

    def result(self) -> str:
        self._block_break()
        out: list[str] = []
        for depth, line in self.lines:
            prefix = "> " * depth
            out.append((prefix + line).rstrip() if line else prefix.rstrip())
        text = "\n".join(out)
        text = re.sub(r"\n([ \t>]*\n){2,}", "\n\n", text)
        return re.sub(r"(\n[ >]*)+$", "", text).strip("\n")


def html_to_text(markup: str, *, max_chars: int = MAX_CHARS,
                 images: dict[str, str] | None = None) -> str:
    """Readable text of an HTML body, at most `max_chars` characters of content.
    `images` maps the Content-IDs of inline images to their attachment names."""
    if not markup:
        return ""
    parser = _Text(max_chars, images)
    try:
        parser.feed(markup[: max_chars * 4])
        parser.close()
    except (AssertionError, ValueError):  # html.parser's rare internal errors on garbage
        return html.unescape(re.sub(r"<[^>]*>", " ", markup[:max_chars]))[:max_chars]
    return parser.result()


_STUB = re.compile(
    r"(this is an? (html|multi-?part|mime)[- ](formatted )?(message|e-?mail)|"
    r"(your|this) (e-?mail )?(client|reader|program) (does not|doesn't|cannot) "
    r"(support|display)|to view this (message|e-?mail)|html[- ]compatible|"
    r"view (it|this) in (your|a) (web )?browser|diese nachricht (ist|enthält) html)",
    re.IGNORECASE)


_TAG = re.compile(r"<[^>]*>")


def _rough_words(markup: str) -> int:
    """At least as many words as the HTML shows (style and script text counted too): a
    plain part with a fifth of these is not a stub, whatever the exact count."""
    return len(_TAG.sub(" ", markup[: MAX_CHARS * 4]).split())


def choose_body(plain: str, html: str, images: dict[str, str]) -> tuple[str, str]:
    """(body text, defect): the text/plain part, unless it is empty or a stub beside an
    HTML part that carries the content (then the HTML converted to text)."""
    if not html.strip():
        return plain, ""
    if not plain.strip():
        return html_to_text(html, images=images), ""
    words = len(plain.split())
    if words * 5 >= _rough_words(html) and not _STUB.search(plain):
        return plain, ""        # settled without converting the HTML (most mail)
    converted = html_to_text(html, images=images)
    html_words = len(re.sub(r"<[^<>\s]+>", " ", converted).split())
    if (_STUB.search(plain) and words < 40 and html_words) or \
            (html_words >= 40 and words * 5 < html_words):
        return converted, "text/plain part is a stub; the HTML part was used"
    return plain, ""
