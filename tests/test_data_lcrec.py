"""The LC-Rec reader on the bundled Office dataset, and its errors on bad input."""

import json
import os

import pytest

from tf_ccfrec.data import lcrec, readers, stats
from tf_ccfrec.data.dataset import DataError


def test_office_statistics(office_dir):
    data = readers.read("lcrec", office_dir)
    result = stats.dataset_statistics(data)
    assert (result["users"], result["items"], result["interactions"]) == (4905, 2420, 53258)
    assert result["sequence_length"] == {"min": 5, "median": 7, "mean": 10.86, "max": 94}
    assert result["items_with_text"] == {"title": 2417, "brand": 1935, "categories": 2420,
                                         "description": 1781}
    assert data.name == "Office"
    assert data.sequences["0"] == ["0", "1", "2", "3", "4"]
    assert data.items["0"]["brand"] == "VTech"


def _write(directory, inter, items, name="Toy"):
    os.makedirs(directory, exist_ok=True)
    for suffix, value in (("inter", inter), ("item", items)):
        with open(os.path.join(directory, f"{name}.{suffix}.json"), "w") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))
    return str(directory)


ITEMS = {"0": {"title": "pen"}, "1": {"title": "ink", "brand": "HP"}}


def test_absent_fields_are_empty_views(tmp_path):
    data = lcrec.read(_write(tmp_path, {"7": [0, 1]}, ITEMS))
    assert data.items["0"] == {"title": "pen", "brand": "", "categories": "", "description": ""}
    assert data.sequences == {"7": ["0", "1"]}


@pytest.mark.parametrize("inter,items,message", [
    ('{"0": [0, 1]', ITEMS, r"Toy.inter.json:1:13: invalid JSON"),
    ({"0": [0, 9]}, ITEMS, r"Toy.inter.json: user '0', position 1: item 9 is not in the item"),
    ({"0": []}, ITEMS, r"Toy.inter.json: user '0': empty sequence"),
    ({"0": "0 1"}, ITEMS, r"Toy.inter.json: user '0': expected a list"),
    ({"0": [0, "1"]}, ITEMS, r"Toy.inter.json: user '0', position 1: item id must be an integer"),
    ([[0, 1]], ITEMS, r"Toy.inter.json: top-level value must be an object"),
    ({"0": [0]}, {"0": {"title": 5}}, r"Toy.item.json: item '0', field 'title': expected a str"),
    ({"0": [0]}, {"0": ["pen"]}, r"Toy.item.json: item '0': expected an object"),
])
def test_bad_input_names_file_and_place(tmp_path, inter, items, message):
    with pytest.raises(DataError, match=message):
        lcrec.read(_write(tmp_path, inter, items))


def test_non_utf8_is_reported(tmp_path):
    directory = _write(tmp_path, {"0": [0]}, ITEMS)
    with open(os.path.join(directory, "Toy.item.json"), "wb") as f:
        f.write(b'{"0": {"title": "caf\xe9"}}')
    with pytest.raises(DataError, match=r"Toy.item.json: not UTF-8 \(byte offset 20\)"):
        lcrec.read(directory)


def test_directory_without_dataset(tmp_path):
    with pytest.raises(DataError, match="expected exactly one <D>.inter.json file, found none"):
        lcrec.read(str(tmp_path))
    _write(tmp_path, {"0": [0]}, ITEMS)
    os.remove(os.path.join(tmp_path, "Toy.item.json"))
    with pytest.raises(DataError, match="Toy.inter.json has no matching Toy.item.json"):
        lcrec.read(str(tmp_path))


def test_unknown_format():
    with pytest.raises(DataError, match="unknown format 'csv'"):
        readers.read("csv", ".")
