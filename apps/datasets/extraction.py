"""Text out of uploaded files: txt, md, html, pdf, docx, csv, xlsx, json.

A file we cannot read raises ExtractionError with a sentence a person understands
("report.pdf could not be read: the PDF is damaged"); nothing here lets a parser's own
exception escape. Parsers (pypdf, python-docx, openpyxl) are imported inside the functions
that use them: they are heavy and only the indexing worker needs them."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import PurePath

from apps.core.errors import DomainError

logger = logging.getLogger(__name__)

TEXT_EXTENSIONS = ("txt", "md", "markdown", "mdx")
HTML_EXTENSIONS = ("html", "htm")
SUPPORTED_EXTENSIONS = (*TEXT_EXTENSIONS, *HTML_EXTENSIONS, "pdf", "docx", "csv", "xlsx", "json")
# Tags whose text is never the page's content.
_NOISE_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "form",
    "button",
    "nav",
    "header",
    "footer",
    "aside",
)
_NOISE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
_NOISE_WORDS = re.compile(
    r"(^|[\s_-])(nav|navbar|navigation|menu|breadcrumbs?|sidebar|sphinxsidebar|related|"
    r"footer|header|headerlink|cookie|banner|advert|ads|social|share|skip-link)([\s_-]|$)",
    re.I,
)
_BLOCK_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "tr",
    "br",
    "pre",
    "blockquote",
    "dt",
    "dd",
    "table",
    "ul",
    "ol",
    "dl",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "figure",
    "figcaption",
}


class ExtractionError(DomainError):
    code = "unreadable_file"


class UnsupportedFileType(DomainError):
    code = "unsupported_file_type"
    status = 415


def extension_of(name: str) -> str:
    return PurePath(name).suffix.lower().lstrip(".")


def check_supported(name: str) -> str:
    """The file's extension, or UnsupportedFileType with the list of what is supported."""
    extension = extension_of(name)
    if extension not in SUPPORTED_EXTENSIONS:
        shown = f".{extension} files" if extension else "Files without an extension"
        raise UnsupportedFileType(
            f"{name}: {shown} are not supported. Upload one of: {', '.join(SUPPORTED_EXTENSIONS)}."
        )
    return extension


def sniff(name: str, extension: str, data: bytes) -> None:
    """A quick look at the first bytes, so an upload that is obviously not what its name
    says is refused at once rather than failing later in the background."""
    if extension == "pdf" and b"%PDF-" not in data[:1024]:
        raise ExtractionError(f"{name} could not be read: it is not a PDF file")
    if extension in ("docx", "xlsx") and not data.startswith(b"PK\x03\x04"):
        raise ExtractionError(f"{name} could not be read: {_damaged(extension)}")


def extract(name: str, data: bytes) -> str:
    """The text of a file, chosen by its extension."""
    extension = check_supported(name)
    reader = _READERS[extension]
    try:
        text = reader(data)
    except ExtractionError as exc:
        raise ExtractionError(f"{name} could not be read: {exc.message}") from exc
    except Exception as exc:  # every parser has its own error family; the user needs one
        logger.info("extraction of %s failed", name, exc_info=True)
        raise ExtractionError(f"{name} could not be read: {_damaged(extension)}") from exc
    if not text.strip():
        raise ExtractionError(f"{name} has no text in it to index.", code="empty_document")
    return text


def _damaged(extension: str) -> str:
    kinds = {
        "pdf": "the PDF is damaged or not a PDF",
        "docx": "the Word document is damaged or not a .docx file",
        "xlsx": "the spreadsheet is damaged or not an .xlsx file",
        "json": "it is not valid JSON",
        "csv": "it is not valid CSV",
    }
    return kinds.get(extension, "the file is damaged")


# --- Text -------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Bytes to text: a BOM wins, then UTF-8, then a guess among common encodings."""
    for bom, encoding in (
        (b"\xef\xbb\xbf", "utf-8-sig"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if data.count(b"\x00") > len(data) // 4:  # UTF-16 without a BOM
        for encoding in ("utf-16-le", "utf-16-be"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
    for encoding in ("gb18030", "shift_jis", "euc-kr", "big5"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _plausible(text):
            return text
    return data.decode("cp1252", errors="replace")


def _plausible(text: str) -> bool:
    """A strict CJK decode of Latin-1 bytes often succeeds with nonsense; real CJK text has
    mostly letters and common punctuation, and few private-use or rare symbols."""
    odd = sum(1 for char in text if "\ue000" <= char <= "\uf8ff" or char == "\ufffd")
    return odd == 0 and any("\u3000" <= char <= "\u9fff" or "\uac00" <= char for char in text)


def _read_text(data: bytes) -> str:
    text = decode_text(data)
    if "\x00" in text:
        raise ExtractionError("it looks like a binary file, not text")
    return text


# --- HTML -------------------------------------------------------------------------------


def html_main_text(html: bytes | str) -> str:
    """The readable text of a page: scripts, styles, navigation, headers, footers and
    sidebars dropped; `<main>`, `<article>` or role=main preferred when the page has one."""
    from lxml import etree  # only the indexing worker parses HTML
    from lxml import html as lxml_html

    if isinstance(html, str):
        html = html.encode()
    try:
        tree = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    title = " ".join((tree.findtext(".//title") or "").split())
    noise = [
        *tree.iter(etree.Comment, etree.ProcessingInstruction, *_NOISE_TAGS),
        *(n for n in tree.iter() if isinstance(n.tag, str) and _is_boilerplate(n)),
    ]
    for node in noise:
        if node.getparent() is not None:
            node.drop_tree()  # keeps the text that follows the node
    root = next(
        (
            found[0]
            for path in (".//main", ".//article", ".//*[@role='main']", ".//body")
            if (found := tree.xpath(path))
        ),
        tree,
    )
    text = _block_text(root)
    if title and not text.startswith(title):
        text = f"{title}\n\n{text}"
    return text


def _is_boilerplate(node) -> bool:
    if node.tag in ("html", "body", "main", "article") or node.get("role") == "main":
        return False
    if node.get("role") in _NOISE_ROLES or node.get("aria-hidden") == "true":
        return True
    names = f"{node.get('class', '')} {node.get('id', '')}".strip()
    return bool(names) and bool(_NOISE_WORDS.search(names))


def _block_text(root) -> str:
    """Text with line breaks only between block elements; source line breaks inside a
    paragraph are spaces, and preformatted text keeps its lines and indentation."""
    from lxml import etree

    parts: list[str] = []
    in_pre = 0

    def add(text: str) -> None:
        # A newline inside <pre> is kept as \x01 so the line clean-up below leaves it be.
        parts.append(text.replace("\n", "\x01") if in_pre else _SPACES.sub(" ", text))

    for event, node in etree.iterwalk(root, events=("start", "end")):
        block = node.tag in _BLOCK_TAGS
        if event == "start":
            in_pre += node.tag == "pre"
            if block:
                parts.append("\n")
            if node.text:
                add(node.text)
            continue
        in_pre -= node.tag == "pre"
        if node.tag in ("td", "th"):
            parts.append(" ")
        if block:
            parts.append("\n")
        if node.tail and node is not root:
            add(node.tail)
    lines = [line.strip() for line in "".join(parts).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text.replace("\x01", "\n")


_SPACES = re.compile(r"\s+")


def _read_html(data: bytes) -> str:
    return html_main_text(data)


# --- Office and PDF ---------------------------------------------------------------------


def _read_pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            if not reader.decrypt(""):
                raise ExtractionError("the PDF is protected by a password")
        except FileNotDecryptedError as exc:
            raise ExtractionError("the PDF is protected by a password") from exc
    pages = [page.extract_text() or "" for page in reader.pages]
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text and pages:
        raise ExtractionError(
            "the PDF has no text layer (it may be scanned images); OCR is not supported"
        )
    return text


def _read_docx(data: bytes) -> str:
    from docx import Document as WordDocument

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ExtractionError("the Word document is damaged or not a .docx file")
    document = WordDocument(io.BytesIO(data))
    parts: list[str] = []
    body = document.element.body
    # Paragraphs and tables in document order.
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            text = "".join(node.text or "" for node in child.iter() if node.tag.endswith("}t"))
            style = child.find(".//{*}pStyle")
            level = style.get(f"{{{child.nsmap['w']}}}val", "") if style is not None else ""
            if text.strip():
                heading = re.match(r"Heading(\d)", level or "")
                parts.append(("#" * int(heading.group(1)) + " " if heading else "") + text)
        elif tag == "tbl":
            for row in child.iter("{*}tr"):
                cells = [
                    "".join(n.text or "" for n in cell.iter() if n.tag.endswith("}t")).strip()
                    for cell in row.iter("{*}tc")
                ]
                parts.append(" | ".join(cells))
    return "\n\n".join(parts)


def _read_xlsx(data: bytes) -> str:
    from openpyxl import load_workbook

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ExtractionError("the spreadsheet is damaged or not an .xlsx file")
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    parts: list[str] = []
    try:
        for sheet in workbook.worksheets:
            rows = [
                ["" if value is None else str(value) for value in row]
                for row in sheet.iter_rows(values_only=True)
            ]
            rows = [row for row in rows if any(cell.strip() for cell in row)]
            if rows:
                parts.append(f"# {sheet.title}\n" + _rows_as_records(rows))
    finally:
        workbook.close()
    return "\n\n".join(parts)


def _read_csv(data: bytes) -> str:
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    return _rows_as_records(rows)


def _rows_as_records(rows: list[list[str]]) -> str:
    """One line per row, each cell named by its column header ("name: Ada; born: 1815"), so
    a chunk cut anywhere keeps the meaning of its cells."""
    if len(rows) < 2:
        return "\n".join("; ".join(row) for row in rows)
    header = [cell.strip() or f"column {i + 1}" for i, cell in enumerate(rows[0])]
    lines = []
    for row in rows[1:]:
        cells = [
            f"{header[i] if i < len(header) else f'column {i + 1}'}: {cell.strip()}"
            for i, cell in enumerate(row)
            if cell.strip()
        ]
        lines.append("; ".join(cells))
    return "\n".join(lines)


def _read_json(data: bytes) -> str:
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise ExtractionError(f"it is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return json.dumps(value, ensure_ascii=False, indent=2)


_READERS: dict[str, Callable[[bytes], str]] = {
    **dict.fromkeys(TEXT_EXTENSIONS, _read_text),
    **dict.fromkeys(HTML_EXTENSIONS, _read_html),
    "pdf": _read_pdf,
    "docx": _read_docx,
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "json": _read_json,
}
