"""Text out of each supported format, and a clear message for files that cannot be read."""

from __future__ import annotations

import pytest

from apps.core.errors import DomainError
from apps.datasets import extraction
from apps.datasets.extraction import ExtractionError, UnsupportedFileType, extract

from . import files


def test_plain_text_and_markdown_are_read_as_they_are():
    assert extract("notes.txt", b"Orbits are ellipses.\n") == "Orbits are ellipses.\n"
    assert extract("README.md", b"# Title\n\n- item\n").startswith("# Title")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("Kepler’s café — naïve".encode(), id="utf-8"),
        pytest.param("\ufeffKepler’s café — naïve".encode(), id="utf-8-bom"),
        pytest.param("Kepler’s café — naïve".encode("utf-16"), id="utf-16-bom"),
        pytest.param("Kepler’s café — naïve".encode("cp1252"), id="windows-1252"),
    ],
)
def test_text_encodings_are_detected(data):
    assert extract("notes.txt", data).lstrip("\ufeff") == "Kepler’s café — naïve"


def test_chinese_text_in_gb18030_is_detected():
    text = "开普勒定律描述了行星围绕太阳的运动。"
    assert extract("notes.txt", text.encode("gb18030")) == text


def test_html_keeps_the_main_text_and_drops_boilerplate():
    text = extract("kepler.html", files.HTML_PAGE)
    assert "Planets move in ellipses with the Sun at one focus." in text
    assert "equal areas in equal times" in text
    assert "Mars 687 days" in text  # one table row, one line
    assert "T**2 = a**3" in text
    for noise in (
        "script text",
        "color: red",
        "About us",
        "sidebar",
        "Site banner",
        "footer",
        "cookies",
    ):
        assert noise not in text, noise


def test_pdf_pages_are_read():
    text = extract("report.pdf", files.pdf("First page about Mars", "Second page about Venus"))
    assert "First page about Mars" in text and "Second page about Venus" in text


def test_docx_paragraphs_headings_and_tables_are_read():
    data = files.docx(
        "Mercury is the closest planet.",
        heading="Inner planets",
        table=[["Planet", "Moons"], ["Earth", "1"]],
    )
    text = extract("planets.docx", data)
    assert "# Inner planets" in text
    assert "Mercury is the closest planet." in text
    assert "Earth | 1" in text


def test_xlsx_rows_keep_their_column_names():
    text = extract("planets.xlsx", files.xlsx([["Planet", "Moons"], ["Mars", 2], ["Jupiter", 95]]))
    assert "# Planets" in text
    assert "Planet: Mars; Moons: 2" in text
    assert "Planet: Jupiter; Moons: 95" in text


def test_csv_rows_keep_their_column_names_whatever_the_delimiter():
    assert "name: Ada; born: 1815" in extract("people.csv", b"name,born\nAda,1815\n")
    assert "name: Ada; born: 1815" in extract("people.csv", b"name;born\nAda;1815\n")


def test_json_is_pretty_printed():
    text = extract("data.json", files.json_file({"planet": "Mars", "moons": ["Phobos", "Deimos"]}))
    assert '"planet": "Mars"' in text and "Deimos" in text


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        pytest.param(
            "report.pdf",
            b"%PDF-1.4\ngarbage",
            "report.pdf could not be read: the PDF is damaged",
            id="pdf",
        ),
        pytest.param(
            "report.docx",
            b"PK\x03\x04not really a zip",
            "report.docx could not be read: the Word document is damaged",
            id="docx",
        ),
        pytest.param(
            "sheet.xlsx",
            b"plain text",
            "sheet.xlsx could not be read: the spreadsheet is damaged",
            id="xlsx",
        ),
        pytest.param(
            "data.json",
            b"{'single': quotes}",
            "data.json could not be read: it is not valid JSON",
            id="json",
        ),
        pytest.param(
            "blob.txt",
            b"\x00\x01\x02\x03" * 10 + b"\xff\xfe\xfd",
            "blob.txt could not be read",
            id="binary",
        ),
        pytest.param("empty.md", b"   \n\n", "empty.md has no text in it to index", id="empty"),
    ],
)
def test_damaged_files_get_a_message_a_person_understands(name, data, says):
    with pytest.raises(ExtractionError) as caught:
        extract(name, data)
    assert caught.value.message.startswith(says)
    assert isinstance(caught.value, DomainError) and caught.value.status == 400


def test_a_password_protected_pdf_says_so():
    with pytest.raises(ExtractionError, match="protected by a password"):
        extract("secret.pdf", files.encrypted_pdf("Hidden orbit data"))


def test_a_pdf_without_text_says_it_may_be_scanned():
    with pytest.raises(ExtractionError, match="no text layer"):
        extract("scan.pdf", files.pdf(""))


@pytest.mark.parametrize("name", ["slides.pptx", "program.exe", "archive"])
def test_unsupported_types_list_what_is_supported(name):
    with pytest.raises(UnsupportedFileType) as caught:
        extract(name, b"data")
    assert "not supported" in caught.value.message and "pdf" in caught.value.message
    assert caught.value.status == 415


def test_an_upload_that_is_not_what_its_name_says_is_caught_by_sniffing():
    with pytest.raises(ExtractionError, match="not a PDF"):
        extraction.sniff("report.pdf", "pdf", b"<html>hello</html>")
