"""The same store and pack give the same model and the same links whatever PYTHONHASHSEED is.

Blocking caps a record's candidates at MAX_CANDIDATES; among candidates sharing as many
blocking keys, the first seen are kept, so the order the keys are read in must not be a set's
(Python salts str hashes per process). The register is written here so that each penalty
record has more tied candidates than the cap: 16 firms sharing the first half of its trade
name, in its own city, and 16 sharing the second half, in another, each firm one bigram and
its sound bigram in common with it. Which of them the cap keeps decides the training pairs,
so the model, and with it the links.

The stores are SQLite copies of one ingested store: the order is Python's, not the engine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import Cli
from sqlalchemy import select
from test_resolve import ingest, uscc, write_csv

from xinyong.services.resolution.resolve import MAX_CANDIDATES, current_links, key_salt
from xinyong.store import tables as t
from xinyong.store.db import open_engine

# (first half, second half) of each penalty record's trade name
GROUPS = [("华美", "瑞康"), ("恒泰", "博远"), ("金桥", "安德"), ("新元", "嘉禾")]
FILLERS = "甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳"  # one character making each registered firm's name its own
HOME, ELSEWHERE = ("北京", "110105"), ("上海", "310115")
REGISTER_HEADERS = ["统一社会信用代码", "企业名称", "法定代表人", "成立日期", "登记状态"]
PENALTY_HEADERS = ["当事人名称", "统一社会信用代码", "法定代表人", "行政处罚决定书文号", "处罚决定日期"]


def build_store(path: Path, tmp_path: Path) -> None:
    assert 2 * len(FILLERS) > MAX_CANDIDATES  # more tied candidates than the cap keeps
    cli = Cli(f"sqlite:///{path}")
    cli("init")
    register = []
    for g, (first, second) in enumerate(GROUPS):
        for i, filler in enumerate(FILLERS):
            for h, (place, division), trade in ((0, HOME, first + filler), (1, ELSEWHERE, filler + second)):
                code = uscc(f"91{division}MA{g:02d}{h}{i:04d}")
                register.append([code, f"{place}{trade}有限公司", "", "2015-01-01", "存续"])
    ingest(cli, write_csv(tmp_path / "register.csv", REGISTER_HEADERS, register), "samr", "registration")
    penalties = [[f"{HOME[0]}{first}{second}有限公司", "", "", f"P{g}{n}", "2024-03-01"]
                 for g, (first, second) in enumerate(GROUPS) for n in range(3)]
    ingest(cli, write_csv(tmp_path / "penalties.csv", PENALTY_HEADERS, penalties), "samr", "penalty")
    engine = open_engine(cli.url)
    with engine.begin() as c:  # made now, so both copies give new entities the same keys
        key_salt(c)
    engine.dispose()


def resolve_with_hash_seed(store: Path, seed: str) -> tuple[object, dict, list]:
    """`xinyong resolve` in a process of its own; the saved model, the links and their explanations."""
    subprocess.run([sys.executable, "-m", "xinyong", "--db", f"sqlite:///{store}", "resolve", "--json"],
                   check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
    engine = open_engine(f"sqlite:///{store}")
    with engine.connect() as c:
        models = c.execute(select(t.resolution_models.c.model, t.resolution_models.c.trained_on)
                           .order_by(t.resolution_models.c.id)).all()
        links = current_links(c)
        explanations = c.execute(select(t.record_links.c.record_id, t.record_links.c.explanation)
                                 .order_by(t.record_links.c.record_id)).all()
    engine.dispose()
    return [tuple(m) for m in models], links, [tuple(e) for e in explanations]


def test_training_and_links_do_not_depend_on_the_hash_seed(tmp_path):
    built = tmp_path / "built.db"
    build_store(built, tmp_path)
    first, second = tmp_path / "seed1.db", tmp_path / "seed2.db"
    for copy in (first, second):
        for part in tmp_path.glob("built.db*"):  # the database and its audit key and head beside it
            shutil.copyfile(part, copy.with_name(part.name.replace("built.db", copy.name)))

    models_1, links_1, explained_1 = resolve_with_hash_seed(first, "1")
    models_2, links_2, explained_2 = resolve_with_hash_seed(second, "2")

    assert len(models_1) == 1  # the store is big enough to train on: a model was learned and saved
    assert models_1 == models_2
    assert links_1 == links_2
    assert explained_1 == explained_2
