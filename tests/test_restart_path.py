"""What a restart of `serve` does before it can answer (issue 12: index ready in seconds).

The name analyser finds a place's short name with a lookup per suffix length instead of trying
every suffix and ethnic group in turn (it is built at every start): it must find the same stem
as the longest-first scan. The report renderer's warm-up waits for `Service.loaded`, which the
app sets once the screening index is loaded."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from xinyong.api.app import create_app
from xinyong.domain.matching import _Endings, _stem
from xinyong.domain.pack import load_pack
from xinyong.store.db import open_engine


def _scan(name: str, suffixes: list[str], ethnic: list[str]) -> str:
    """The stem as the analyser found it before: every word tried, longest first."""
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    stripped = True
    while stripped:
        stripped = False
        for group in sorted(ethnic, key=len, reverse=True):
            if name.endswith(group) and len(name) - len(group) >= 2:
                name, stripped = name[: -len(group)], True
                break
    return name


words = st.text(alphabet="市区县州自治族朝鲜蒙古回", min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet="北京延边市区县州自治族朝鲜蒙古回", max_size=12),
       suffixes=st.lists(words, max_size=8), ethnic=st.lists(words, max_size=8))
def test_the_stem_is_the_one_the_longest_first_scan_finds(name, suffixes, ethnic):
    assert _stem(name, _Endings(suffixes), _Endings(ethnic)) == _scan(name, suffixes, ethnic)


def test_the_packs_places_have_the_same_stems():
    rules = load_pack("cn").resolution.name_rules
    suffixes, ethnic = [*rules.region_suffixes, *rules.district_suffixes], list(rules.ethnic_groups)
    assert len(rules.places) > 1000
    for place in rules.places:
        assert _stem(place.name, _Endings(suffixes), _Endings(ethnic)) == _scan(place.name, suffixes, ethnic)


def test_the_app_says_when_the_index_is_loaded(cli, db_url):
    engine = open_engine(db_url)
    app = create_app(engine, load_pack("cn"), webhooks=False)
    service = app.state.service
    assert not service.loaded.is_set()
    with TestClient(app) as client:  # the lifespan loads the index before the first request
        assert service.loaded.is_set() and service.index is not None
        assert client.post("/v1/ping").status_code in (200, 401)
    engine.dispose()


def test_readings_without_the_phrase_dictionary_are_pypinyins_readings():
    """Single characters (what `readings` and `reading` ask for) read the same without the phrase
    dictionary as with it: compared in a fresh interpreter that loads it."""
    from xinyong.domain.names import reading, readings

    chars = "重行长乐都会还单朴查曾解仇区华强墙枝技厦银乾藏"
    script = ("import os; os.environ.pop('PYPINYIN_NO_PHRASES', None)\n"
              "from pypinyin import pinyin, Style\n"
              f"for c in {chars!r}:\n"
              "    print(c, sorted(pinyin(c, style=Style.NORMAL, heteronym=True)[0]), pinyin(c, style=Style.NORMAL)[0][0])")
    env = {k: v for k, v in os.environ.items() if k != "PYPINYIN_NO_PHRASES"}
    with_phrases = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert with_phrases.stdout.splitlines() == [f"{c} {sorted(readings(c))} {reading(c)}" for c in chars]
