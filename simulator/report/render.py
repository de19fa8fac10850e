"""report.md and report.html from the report's blocks (`document.report_blocks`): report.md
links the PNG files beside it, report.html embeds the same PNG bytes as data URIs and opens
from disk with no server.
"""
import base64
import html
from pathlib import Path

from ..core.files import atomic_write_bytes, atomic_write_text


def to_markdown(blocks: list) -> str:
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {rest[0]}")
        elif kind == "p" and rest[0]:
            out.append(rest[0])
        elif kind == "note":
            out.append(f"> {rest[0]}")
        elif kind == "table":
            header, rows = rest
            out.append("\n".join(["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
                                 + ["| " + " | ".join(map(cell, row)) + " |" for row in rows]))
        elif kind == "figure":
            figure = rest[0]
            out.append(f"![{figure.title}]({figure.file_name})\n\n*{figure.caption}*")
    return "\n\n".join(out) + "\n"


CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}td,th{border:1px solid #ddd;"
       "padding:.25em .6em;text-align:left}th{background:#f4f4f4}img{max-width:100%}figcaption{color:#444;"
       "font-style:italic;margin:.3em 0 1.5em}.note{background:#fff8e0;padding:.5em 1em;border-left:4px solid #e6b800}"
       "code{background:#f4f4f4;padding:0 .2em}")


def inline(text: str) -> str:
    """HTML-escape, and render `code` spans as <code>."""
    parts = html.escape(str(text)).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(blocks: list) -> str:
    title = next(rest[0] for kind, *rest in blocks if kind == "h1")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body>"]
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{inline(rest[0])}</{kind}>")
        elif kind == "p" and rest[0]:
            out.append(f"<p>{inline(rest[0])}</p>")
        elif kind == "note":
            out.append(f'<p class="note">{inline(rest[0])}</p>')
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{inline(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            figure = rest[0]
            data = base64.b64encode(figure.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(figure.title)}" '
                       f'data-file="{html.escape(figure.file_name)}"><figcaption>{inline(figure.caption)}'
                       "</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_document(folder: Path, figures: list, blocks: list) -> list[Path]:
    """Write each figure's PNG (removing the stale PNG of one not drawn this time), then
    report.md and report.html of `blocks`, each whole; return the paths written."""
    written = []
    for figure in figures:
        path = folder / figure.file_name
        if figure.png is None:
            path.unlink(missing_ok=True)
            continue
        atomic_write_bytes(path, figure.png)
        written.append(path)
    for name, text in (("report.md", to_markdown(blocks)), ("report.html", to_html(blocks))):
        atomic_write_text(folder / name, text)
        written.append(folder / name)
    return written
