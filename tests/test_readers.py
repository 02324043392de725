"""Each reader on small files in its exact format, and on the real datasets."""

import os

import pytest

from tests import data_files
from tests.conftest import REPO
from tf_ccfrec.data import readers, stats
from tf_ccfrec.data.text import clean_text, parse_token_seq

SHARED = os.path.join(os.path.dirname(REPO), "shared", "data")


def test_clean_text():
    assert clean_text("Pen &amp; Ink <b>Set</b>") == "Pen & Ink Set"
    assert clean_text('He said "hi"\nthen\r\n  left ') == "He said hi then left"
    assert clean_text(["Toys", "<i>Puzzles</i>", ""]) == "Toys Puzzles"
    assert clean_text(None) == ""


def test_parse_token_seq():
    assert parse_token_seq("'Beauty', 'Skin Care'") == ["Beauty", "Skin Care"]
    assert parse_token_seq("'Office', \"Men's\"") == ["Office", "Men's"]
    assert parse_token_seq("pen red") == ["pen", "red"]


def test_p5_with_recbole_item_text(tmp_path):
    data = readers.read("p5", data_files.p5_recbole(tmp_path))
    assert data.sequences == {"U1": ["A1", "A2", "A3"], "U2": ["A2", "A3", "A1", "A3"]}
    assert data.views == ["title", "brand", "categories"]
    assert data.items["A1"] == {"title": "Pen & Ink Set", "brand": "Pilot",
                                "categories": "Office Pens"}
    # A quoted field with a newline inside, an empty brand, an empty float.
    assert data.items["A2"] == {"title": "Two-line title", "brand": "", "categories": "Office"}
    assert data.items["A3"]["categories"] == "Office Men's"
    assert data.numeric["A1"] == {"sales_rank": 10.0, "price": 5.5}
    assert data.numeric["A2"] == {"price": 1.25}


def test_p5_with_lcrec_item_text_shifts_ids(tmp_path):
    data = readers.read("p5", data_files.p5_lcrec(tmp_path))
    assert data.sequences == {"u-a": ["biz-1", "biz-2", "biz-3"], "u-b": ["biz-3", "biz-3", "biz-1"]}
    assert data.views == ["title", "description"]
    assert data.items["biz-1"] == {"title": "Cafe One", "description": "Coffee, Tea"}
    assert data.items["biz-3"]["title"] == "Three Bar"


def test_recbole_orders_by_timestamp_and_parses_types(tmp_path):
    data = readers.read("recbole", data_files.recbole(tmp_path))
    assert data.sequences == {"u1": ["i1", "i3", "i2"], "u2": ["i3", "i1"]}
    assert data.views == ["title", "tags"]  # token and token_seq columns other than the id
    assert data.items["i1"] == {"title": "Red pen", "tags": "pen red"}
    assert data.numeric["i1"] == {"price": 1.5}
    assert data.numeric["i3"] == {}


def test_amazon2023_keeps_the_official_split(tmp_path):
    data = readers.read("amazon2023", data_files.amazon2023(tmp_path))
    assert data.name == "Toys"
    assert data.sequences == {"U1": ["B1", "B2", "B3", "B4"], "U2": ["B3", "B1", "B2", "B4"]}
    assert data.splits == {"valid": {"U1": "B3", "U2": "B2"}, "test": {"U1": "B4", "U2": "B4"}}
    assert data.views == ["title", "brand", "categories", "description", "features"]
    assert data.items["B1"] == {"title": "Blocks", "brand": "Acme", "categories": "Toys Building",
                                "description": "Stack & build", "features": "wood 12 pieces"}
    assert data.items["B2"]["brand"] == "BallCo"
    assert data.items["B4"]["title"] == "Puzzle 1000"
    assert data.items["B4"]["description"] == "Hard"


def test_views_option(tmp_path):
    data = readers.read("p5", data_files.p5_recbole(tmp_path), views=["title", "sales_type"])
    assert data.items["A1"] == {"title": "Pen & Ink Set", "sales_type": "Toy"}


@pytest.mark.parametrize("name,fmt,counts,text", [
    ("beauty", "p5", (22363, 12101, 198502), {"title": 12094, "brand": 10003,
                                                "categories": 12101}),
    ("yelp", "p5", (30431, 20033, 316354), {"title": 20033, "description": 20033}),
    ("office", "lcrec", (4905, 2420, 53258), {"title": 2417, "brand": 1935, "categories": 2420,
                                               "description": 1781}),
])
def test_shared_datasets_match_their_readme(name, fmt, counts, text):
    directory = os.path.join(SHARED, name)
    if name == "office":
        directory = os.path.join(REPO, "data", "office")  # the bundled copy
    elif not os.path.isdir(directory):
        pytest.skip(f"{directory} is not present")
    data = readers.read(fmt, directory)
    result = stats.dataset_statistics(data)
    assert (result["users"], result["items"], result["interactions"]) == counts
    assert result["items_with_text"] == text
    assert data.problems["skipped"] == {}
