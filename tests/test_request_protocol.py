"""People's own words through the pages: the request-following protocol (recsys.request_protocol, scripts/evaluate.py
--task requests) and the bad inputs of issue 26 on the Stylist and Text-guided search services (tiny world)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recsys.artifacts import load_artifacts
from recsys.catalog import Catalog
from recsys.request_protocol import evaluate_requests, load_requests, satisfying
from recsys.store import ModelStore

REQUESTS = Path(__file__).parent / "fixtures" / "requests"


@pytest.fixture(scope="module")
def world(tiny_ready_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("requests") / "tiny"
    shutil.copytree(tiny_ready_dir, out)
    catalog = Catalog.load(out)
    return catalog, load_artifacts(catalog)


@pytest.fixture(scope="module")
def search(world):
    from recsys.tasks.composed.service import SearchService

    catalog, artifacts = world
    return SearchService(catalog, artifacts, ModelStore(catalog, artifacts)).load()


@pytest.fixture(scope="module")
def chat(world):
    from recsys.tasks.dialogue.service import StylistService

    catalog, artifacts = world
    return StylistService(catalog, artifacts, ModelStore(catalog, artifacts))


def test_our_request_files_are_valid_and_the_heldout_phrasings_differ():
    dev, held = (load_requests(REQUESTS / f"{n}-requests.json") for n in ("dev", "heldout"))
    assert len(dev["search"]) >= 50 and len(dev["captions"]) >= 30 and len(dev["stylist"]) >= 20
    assert not {e["text"] for e in dev["search"]} & {e["text"] for e in held["search"]}


def test_a_malformed_requests_file_is_one_sentence(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"search": [{"want": {}}]}), encoding="utf-8")
    with pytest.raises(ValueError, match="Entry 1 of search in bad.json"):
        load_requests(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot be read"):
        load_requests(path)


def test_the_protocol_scores_each_kind_and_the_page_follows_what_is_asked(world, search, chat):
    catalog, _ = world
    requests = load_requests(REQUESTS / "dev-requests.json")
    report = evaluate_requests(catalog, requests, search=search, chat=chat)
    for kind, page_row in (("search", "text-only"), ("captions", "combiner"), ("stylist", "dialogue-infonce")):
        page, alone = report[kind][page_row], report[kind][page_row + " (model alone)"]
        assert page["n"] == alone["n"] > 0 and 0 <= page["chance"] < 1
        assert page["score"] >= alone["score"] and page["score"] > page["chance"]
        assert page["n"] + page["unsatisfiable"] == len(requests[kind])


def test_satisfying_reads_lists_as_any_of_and_unknown_keys_as_unmet(tiny_catalog):
    items = tiny_catalog.items
    both = satisfying(items, {"color": ["black", "white"]}, {})
    assert both.sum() == items["color"].isin(["black", "white"]).sum()
    assert not satisfying(items, {"fabric": "wool"}, {}).any()


def test_free_text_ranks_what_meets_it_first(search, world):
    items = world[0].items.set_index("item_id")
    result = search.search_text("sneakers in any colour except white", k=5)
    assert all(items.loc[i, "category"] == "sneakers" and items.loc[i, "color"] != "white" for i in result.item_ids)
    assert result.understood == "sneakers → shoes; not: white"


def test_a_caption_never_pulls_toward_a_negated_value(search, world):
    catalog = world[0]
    items = catalog.items
    reference = items[items["color"] == "green"].item_id.iloc[0]
    category = items.set_index("item_id").loc[reference, "category"]
    result = search.search(search.reference_features(reference), ["in black instead of green"], k=5,
                           category=category, exclude=[reference], reference_attributes=search.reference_attributes(reference))
    colours = items.set_index("item_id").loc[result.item_ids, "color"]
    assert "green" not in set(colours)


@pytest.mark.parametrize("text", ["a green tanktop with long sleeves", "black but not black", "balck boots",
                                  "빨간 원피스", "🔥👗", "red " * 700])
def test_bad_search_text_gets_sentences_never_a_traceback(search, text):
    result = search.search_text(text, k=5)
    assert all(isinstance(n, str) and n.endswith(".") for n in result.notes)


def test_an_unsatisfiable_search_says_which_part_cannot_be_met(search):
    result = search.search_text("a tanktop with long sleeves", k=5)  # tank tops are sleeveless on the built-in world
    assert any("long sleeve" in n for n in result.notes) and len(result.item_ids) == 5


def test_the_stylist_honours_each_slot_and_keeps_what_was_asked_before(chat, world):
    items = world[0].items
    reply = chat.reply("a grey hoodie and black trousers", [])
    reply = chat.reply("and white sneakers", reply.turns)
    coordi = {slot: items.iloc[row] for slot, row in reply.proposal.coordi.items()}
    assert (coordi["top"]["category"], coordi["top"]["color"]) == ("hoodie", "grey") or "top" in " ".join(
        reply.proposal.unmet)
    assert coordi["shoes"]["category"] == "sneakers" and coordi["shoes"]["color"] == "white"
    assert coordi["bottom"]["category"] == "trousers"
    assert "hoodie" in reply.understood and "sneakers" in reply.understood


@pytest.mark.parametrize("message", ["a pink tanktop with long sleeves", "black but not black", "balck boots",
                                     "빨간 원피스 주세요", "🔥👗", "x" * 2000])
def test_bad_messages_get_a_sentence_and_lose_nothing(chat, message):
    first = chat.reply("white sneakers please", [])
    reply = chat.reply(message, first.turns)
    assert reply.turns[: len(first.turns)] == first.turns  # nothing of the conversation lost
    assert all(isinstance(n, str) and n.endswith(".") for n in reply.notes)
    if message.startswith(("a pink", "black but", "balck")):
        said = " ".join(reply.notes + (reply.proposal.unmet if reply.proposal else []))
        assert said  # each gets its sentence: what cannot be met, the contradiction, the misspelling read
