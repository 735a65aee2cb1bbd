"""What an agent sees in a Zendesk note: product links, inline reference pictures, escaping."""

from __future__ import annotations

from imagematch.models import Match
from imagematch.sources.zendesk.notes import MatchLinks, render_note


def _match(pid: str, name: str, score: float) -> Match:
    return Match(product_id=pid, name=name, score=score, image_id=f"{pid}/abc")


def test_products_link_to_their_page_and_show_their_public_picture() -> None:
    links = {
        "SKU-1": MatchLinks("https://shop.example/p/SKU-1", "https://cdn.example/sku-1.jpg"),
        "SKU-2": MatchLinks(None, None),
    }
    html = render_note(
        attachment_id="99",
        file_name="photo.jpg",
        matches=[_match("SKU-1", "Oat milk", 0.8), _match("SKU-2", "Soy milk", 0.5)],
        min_score=0.25,
        links=lambda m: links[m.product_id],
        job_url="https://im.example/ui/jobs/5",
    )
    assert '<img src="https://cdn.example/sku-1.jpg" alt="" width="64" height="64"> ' in html
    assert '<a href="https://shop.example/p/SKU-1">Oat milk</a> — ID/SKU SKU-1 — score 0.800' in html
    assert "<li>Soy milk — ID/SKU SKU-2 — score 0.500</li>" in html
    assert '<a href="https://im.example/ui/jobs/5">Confirm or correct</a>' in html
    assert html.endswith("<p>ref imagematch-note:99</p>")


def test_catalog_text_and_urls_are_escaped() -> None:
    html = render_note(
        attachment_id="1",
        file_name="<b>.jpg",
        matches=[_match("X&1", '<script>"', 0.9)],
        min_score=0.25,
        links=lambda m: MatchLinks('https://shop.example/p?a=1&b="x"', None),
    )
    assert "<script>" not in html and "&lt;script&gt;&quot;" in html
    assert 'href="https://shop.example/p?a=1&amp;b=&quot;x&quot;"' in html
    assert "ID/SKU X&amp;1" in html
