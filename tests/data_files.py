"""Small dataset directories in each supported format, written the way the real files are."""

import json
import os
import pathlib

BEAUTY_ITEM_HEADER = ("item_id:token\ttitle:token\tsales_type:token\tsales_rank:float\t"
                      "categories:token_seq\tprice:float\tbrand:token\n")


def write(directory, name, content, mode="w"):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, mode) as f:
        f.write(content)
    return path


def p5_recbole(directory, sequences="1 1 2 3\n2 2 3 1 3\n", extra_item_rows=""):
    """A P5 dataset with a RecBole item file, like ../shared/data/beauty."""
    datamaps = {"id2user": {"1": "U1", "2": "U2"}, "user2id": {"U1": "1", "U2": "2"},
                "id2item": {"1": "A1", "2": "A2", "3": "A3"},
                "item2id": {"A1": "1", "A2": "2", "A3": "3"}}
    write(directory, "toy_sequential_data.txt", sequences)
    write(directory, "toy_datamaps.json", json.dumps(datamaps))
    write(directory, "Amazon_Toy.item", BEAUTY_ITEM_HEADER
          + "A1\tPen &amp; Ink <b>Set</b>\tToy\t10.0\t'Office', 'Pens'\t5.5\tPilot\n"
          + "A2\t\"Two-line\ntitle\"\tToy\t\t'Office'\t1.25\t\n"
          + "A3\tStapler\tToy\t3.0\t'Office', \"Men's\"\t9.0\tSwingline\n" + extra_item_rows)
    return str(directory)


def p5_lcrec(directory, sequences="1 1 2 3\n2 3 3 1\n"):
    """A P5 dataset with an LC-Rec item JSON keyed by P5 id - 1, like ../shared/data/yelp."""
    datamaps = {"id2user": {"1": "u-a", "2": "u-b"},
                "id2item": {"1": "biz-1", "2": "biz-2", "3": "biz-3"}}
    write(directory, "toy_sequential_data.txt", sequences)
    write(directory, "toy_datamaps.json", json.dumps(datamaps))
    write(directory, "Toy.item.json", json.dumps({
        "0": {"title": "Cafe One", "description": "Coffee, Tea"},
        "1": {"title": "Two Pizza", "description": "Pizza"},
        "2": {"title": "Three Bar", "description": "Bars, Nightlife"}}))
    return str(directory)


def recbole(directory, inter_rows=None):
    """RecBole atomic files; interactions out of time order in the file."""
    rows = inter_rows if inter_rows is not None else [
        "u1\ti2\t5.0\t300", "u1\ti1\t4.0\t100", "u2\ti3\t3.0\t50", "u1\ti3\t2.0\t200",
        "u2\ti1\t1.0\t60"]
    write(directory, "toy.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          + "\n".join(rows) + "\n")
    write(directory, "toy.item", "item_id:token\ttitle:token\ttags:token_seq\tprice:float\n"
          "i1\tRed pen\tpen red\t1.5\ni2\tBlue pen\tpen blue\t2.5\ni3\tNotebook\tpaper\t\n")
    return str(directory)


AMAZON_HEADER = "user_id,parent_asin,rating,timestamp,history\n"


def amazon2023(directory):
    """Amazon Reviews 2023 benchmark CSVs (last_out_w_his) and meta JSONL for two users."""
    write(directory, "Toys.train.csv", AMAZON_HEADER
          + "U1,B2,5.0,2000,B1\nU1,B1,4.0,1000,\nU2,B3,3.0,1500,\nU2,B1,5.0,1600,B3\n")
    write(directory, "Toys.valid.csv", AMAZON_HEADER + "U1,B3,5.0,3000,B1 B2\n"
          "U2,B2,4.0,1700,B3 B1\n")
    write(directory, "Toys.test.csv", AMAZON_HEADER + "U1,B4,5.0,4000,B1 B2 B3\n"
          "U2,B4,1.0,1800,B3 B1 B2\n")
    meta = [
        {"parent_asin": "B1", "title": "Blocks", "features": ["wood", "12 pieces"],
         "description": ["Stack &amp; build"], "categories": ["Toys", "Building"],
         "details": {"Brand": "Acme"}},
        {"parent_asin": "B2", "title": "Ball", "features": [], "description": [],
         "categories": ["Toys"], "details": {}, "store": "BallCo"},
        {"parent_asin": "B3", "title": "Kite", "features": ["nylon"], "description": ["Flies"],
         "categories": [], "details": {"Brand": "Sky"}},
        {"parent_asin": "B4", "title": "Puzzle \"1000\"", "features": None,
         "description": ["<p>Hard</p>"], "categories": ["Toys", "Puzzles"], "details": {}},
    ]
    write(directory, "meta_Toys.jsonl", "".join(json.dumps(m) + "\n" for m in meta))
    return str(directory)


def lcrec(directory, inter, items, name="Toy"):
    for suffix, value in (("inter", inter), ("item", items)):
        write(directory, f"{name}.{suffix}.json",
              value if isinstance(value, str) else json.dumps(value))
    return str(directory)


def office_slice(root, users, dim, codebook_size):
    """The first `users` Office users with their items' real text, prepared, and codes from
    random view vectors (the encoder is tested elsewhere): (prepared dir, codes dir)."""
    import numpy as np

    from tests.conftest import OFFICE
    from tf_ccfrec.codes import artifact, build
    from tf_ccfrec.codes.config import CodesConfig
    from tf_ccfrec.data import prepare, readers

    office = readers.read("lcrec", OFFICE)
    chosen = list(office.sequences)[:users]
    items = sorted({i for u in chosen for i in office.sequences[u]}, key=int)
    root = pathlib.Path(root)
    raw = lcrec(root / "raw", {u: [int(i) for i in office.sequences[u]] for u in chosen},
                {i: {v: office.items[i][v] for v in office.views} for i in items})
    prepare.prepare("lcrec", raw, str(root / "prepared"))
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((len(items), 2, 32)).astype(np.float32)
    codes = build.codes_from_embeddings(items, embeddings, ["title", "brand"],
                                        CodesConfig(pca_dim=dim, codes_per_view=2,
                                                    codebook_size=codebook_size))
    artifact.save(str(root / "codes"), codes)
    return str(root / "prepared"), str(root / "codes")


def p5_from_lcrec(directory, lcrec_dir, name="office"):
    """An LC-Rec dataset (e.g. the bundled Office) laid out as P5 with its LC-Rec item JSON,
    like ../shared/data/yelp: P5 ids are the LC-Rec indices + 1."""
    import glob
    import shutil

    [inter] = glob.glob(os.path.join(lcrec_dir, "*.inter.json"))
    with open(inter) as f:
        sequences = json.load(f)
    items = {i for seq in sequences.values() for i in seq}
    datamaps = {"id2user": {str(int(u) + 1): f"user-{u}" for u in sequences},
                "id2item": {str(i + 1): f"item-{i}" for i in sorted(items)}}
    write(directory, f"{name}_sequential_data.txt",
          "".join(f"{int(u) + 1} {' '.join(str(i + 1) for i in seq)}\n"
                  for u, seq in sequences.items()))
    write(directory, f"{name}_datamaps.json", json.dumps(datamaps))
    shutil.copy(inter.replace(".inter.json", ".item.json"),
                os.path.join(directory, f"{name}.item.json"))
    return str(directory)
