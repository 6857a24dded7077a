"""The embed snippets builders copy: they point at the app's public page, and a hostile app
name cannot break out of them."""

import pytest
from bs4 import BeautifulSoup
from django.test import Client

from apps.chat.embedding import embed_snippets
from tests.chat.conftest import make_app

pytestmark = pytest.mark.django_db


def test_snippets_point_at_the_public_page(team):
    app = make_app(team)
    snippets = embed_snippets(app=app, site_url="https://orrery.example/")
    assert snippets["url"] == f"https://orrery.example/chat/{app.site_code}"
    frame = BeautifulSoup(snippets["iframe"], "html.parser").iframe
    assert frame["src"] == snippets["url"]
    script = BeautifulSoup(snippets["script"], "html.parser").script
    assert script["src"] == "https://orrery.example/static/js/embed.js"
    assert script["data-orrery-chat"] == snippets["url"]


def test_snippets_are_text_to_copy_not_markup(team):
    from django.template import Context, Template

    snippets = embed_snippets(app=make_app(team), site_url="https://orrery.example")
    shown = Template("{{ s.iframe }} {{ s.script }}").render(Context({"s": snippets}))
    assert "<iframe" not in shown and "<script" not in shown
    assert "&lt;iframe" in shown and "&lt;script" in shown


def test_a_text_generator_embeds_its_own_page(team):
    app = make_app(team, mode="completion")
    assert embed_snippets(app=app, site_url="http://x")["url"].endswith(
        f"/completion/{app.site_code}"
    )


def test_a_hostile_app_name_stays_an_attribute_value(team):
    app = make_app(team)
    app.name = '"><script>alert(1)</script>'
    snippets = embed_snippets(app=app, site_url="https://orrery.example")
    for html in (snippets["iframe"], snippets["script"]):
        tree = BeautifulSoup(html, "html.parser")
        assert len(tree.find_all(True)) == 1
        assert "<script>alert" not in html


def test_the_bubble_script_is_served(db):
    response = Client().get("/static/js/embed.js")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"data-orrery-chat" in body or b"orreryChat" in body
