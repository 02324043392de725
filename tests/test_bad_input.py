"""Bad input: each case fails with file, line or key and problem, or is skipped and counted."""

import os

import pytest

from tests import data_files
from tf_ccfrec.data import readers
from tf_ccfrec.data.errors import DataError

ITEMS = {"0": {"title": "pen"}, "1": {"title": "ink", "brand": "HP"}}


def _lcrec(tmp_path, inter, items=ITEMS):
    return data_files.lcrec(tmp_path, inter, items)


@pytest.mark.parametrize("inter,items,message,kind", [
    ({"0": [0, 9]}, ITEMS, r"Toy.inter.json: user '0', position 1: item 9 is not in the item",
     "unknown_item"),
    ({"0": []}, ITEMS, r"Toy.inter.json: user '0': empty sequence", "empty_sequence"),
    ({"0": "0 1"}, ITEMS, r"Toy.inter.json: user '0': expected a list", "bad_sequence"),
    ({"0": [0, "1"]}, ITEMS, r"Toy.inter.json: user '0', position 1: item id must be an integer",
     "bad_item_id"),
    ({"0": [0]}, {"0": {"title": 5}, "1": {}}, r"Toy.item.json: item '0', field 'title': expected "
     r"a string, got int", "bad_item"),
    ({"0": [0]}, {"0": ["pen"], "1": {}}, r"Toy.item.json: item '0': expected an object",
     "bad_item"),
    ({"0": [1], "1": [1]}, '{"0": {"title": "a"}, "1": {"title": "b"}, "0": {"title": "c"}}',
     r"Toy.item.json: item '0' appears more than once", "duplicate_item"),
])
def test_lcrec_problems(tmp_path, inter, items, message, kind):
    directory = _lcrec(tmp_path, inter, items)
    with pytest.raises(DataError, match=message):
        readers.read("lcrec", directory)
    skipped = readers.read("lcrec", directory, on_error="skip")
    assert skipped.problems["skipped"][kind] >= 1


def test_lcrec_skip_keeps_the_good_part(tmp_path):
    data = readers.read("lcrec", _lcrec(tmp_path, {"0": [0, 9, 1], "1": [], "2": [1]}),
                        on_error="skip")
    assert data.sequences == {"0": ["0", "1"], "2": ["1"]}
    assert data.problems["skipped"] == {"empty_sequence": 1, "unknown_item": 1}
    assert "item 9 is not in the item catalog" in data.problems["examples"][0]


@pytest.mark.parametrize("inter,message", [
    ('{"0": [0, 1]', r"Toy.inter.json:1:13: invalid JSON"),
    ("[[0, 1]]", r"Toy.inter.json: top-level value must be an object, got list"),
])
def test_lcrec_malformed_json_fails_even_when_skipping(tmp_path, inter, message):
    directory = _lcrec(tmp_path, inter)
    for on_error in ("raise", "skip"):
        with pytest.raises(DataError, match=message):
            readers.read("lcrec", directory, on_error=on_error)


def test_non_utf8_json(tmp_path):
    directory = _lcrec(tmp_path, {"0": [0]})
    data_files.write(directory, "Toy.item.json", b'{"0": {"title": "caf\xe9"}}', mode="wb")
    with pytest.raises(DataError, match=r"Toy.item.json:1: not UTF-8 \(byte offset 20\)"):
        readers.read("lcrec", directory)


def test_p5_malformed_line_and_unknown_ids(tmp_path):
    directory = data_files.p5_recbole(tmp_path, sequences="1 1 2\n2 2 x\n3 1 2\n1 3\n")
    with pytest.raises(DataError, match=r"toy_sequential_data.txt:2: 'x' is not an integer id"):
        readers.read("p5", directory)
    data = readers.read("p5", directory, on_error="skip")
    assert data.sequences == {"U1": ["A1", "A2"]}
    assert data.problems["skipped"] == {"bad_line": 1, "duplicate_user": 1, "unknown_user": 1}


def test_p5_item_missing_from_datamaps(tmp_path):
    directory = data_files.p5_recbole(tmp_path, sequences="1 1 7 2\n")
    with pytest.raises(DataError, match=r"toy_sequential_data.txt:1: item 7 is not in id2item"):
        readers.read("p5", directory)
    assert readers.read("p5", directory, on_error="skip").sequences == {"U1": ["A1", "A2"]}


def test_p5_non_utf8_line(tmp_path):
    directory = data_files.p5_recbole(tmp_path)
    data_files.write(directory, "toy_sequential_data.txt", b"1 1 2\n2 2 \xff3\n", mode="wb")
    with pytest.raises(DataError, match=r"toy_sequential_data.txt:2: not UTF-8 \(column 5\)"):
        readers.read("p5", directory)
    data = readers.read("p5", directory, on_error="skip")
    assert data.problems["skipped"] == {"encoding": 1}


def test_p5_empty_sequence(tmp_path):
    directory = data_files.p5_recbole(tmp_path, sequences="1 1 2\n2\n")
    with pytest.raises(DataError, match=r"toy_sequential_data.txt:2: user 2 has no items"):
        readers.read("p5", directory)


def test_recbole_duplicate_catalog_row(tmp_path):
    directory = data_files.p5_recbole(tmp_path, extra_item_rows="A1\tAgain\tToy\t1\t'x'\t1\tY\n")
    with pytest.raises(DataError, match=r"Amazon_Toy.item:6: item_id 'A1' appears again"):
        readers.read("p5", directory)
    data = readers.read("p5", directory, on_error="skip")
    assert data.items["A1"]["title"] == "Pen & Ink Set"  # the first row stands
    assert data.problems["skipped"] == {"duplicate_row": 1}


def test_recbole_bad_rows(tmp_path):
    directory = data_files.recbole(tmp_path, inter_rows=["u1\ti1\t5.0\t1", "u1\ti2\t5.0",
                                                         "u1\ti3\t5.0\tnoon", "u2\ti9\t1\t2"])
    with pytest.raises(DataError, match=r"toy.inter:3: 3 columns, the header has 4"):
        readers.read("recbole", directory)
    data = readers.read("recbole", directory, on_error="skip")
    assert data.sequences == {"u1": ["i1"]}
    assert data.problems["skipped"] == {"bad_line": 2, "unknown_item": 1}


def test_recbole_bad_header_and_float(tmp_path):
    directory = data_files.recbole(tmp_path)
    data_files.write(directory, "toy.item", "item_id:token\tprice:number\ni1\t1\n")
    with pytest.raises(DataError, match=r"toy.item:1: column 2 header 'price:number'"):
        readers.read("recbole", directory)
    data_files.write(directory, "toy.item", "item_id:token\ttitle:token\tprice:float\n"
                                            "i1\tpen\tcheap\n")
    with pytest.raises(DataError, match=r"toy.item:2: field 'price': 'cheap' is not a float"):
        readers.read("recbole", directory)


def test_amazon2023_bad_input(tmp_path):
    directory = data_files.amazon2023(tmp_path)
    with open(os.path.join(directory, "meta_Toys.jsonl"), "a") as f:
        f.write('{"parent_asin": "B1", "title": "dup"}\n{"title": "no id"}\nnot json\n')
    with pytest.raises(DataError, match=r"meta_Toys.jsonl:5: parent_asin 'B1' appears again"):
        readers.read("amazon2023", directory)
    data = readers.read("amazon2023", directory, on_error="skip")
    assert data.problems["skipped"] == {"bad_line": 2, "duplicate_row": 1}
    directory = data_files.amazon2023(tmp_path / "again")
    data_files.write(directory, "Toys.test.csv", data_files.AMAZON_HEADER + "U1,B9,5.0,4000,B1\n")
    with pytest.raises(DataError, match=r"Toys.test.csv:2: item 'B9' is not in meta_Toys.jsonl"):
        readers.read("amazon2023", directory)
    data_files.write(directory, "Toys.valid.csv", "user,item\n")
    with pytest.raises(DataError, match=r"Toys.valid.csv:1: header 'user,item', expected"):
        readers.read("amazon2023", directory)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="expected exactly one <D>.inter.json file, found none"):
        readers.read("lcrec", str(tmp_path))
    with pytest.raises(DataError, match=r"no \*_sequential_data.txt file"):
        readers.read("p5", str(tmp_path))
    with pytest.raises(DataError, match=r"expected exactly one \*.inter file, found none"):
        readers.read("recbole", str(tmp_path))
    with pytest.raises(DataError, match=r"expected exactly one \{Category\}.train.csv"):
        readers.read("amazon2023", str(tmp_path))
    with pytest.raises(DataError, match="unknown format 'csv'"):
        readers.read("csv", str(tmp_path))
