"""`recdb demo` end to end on a small GroupLens slice with the tiny BERT: the steps run,
the clicks show up at once (zero-lag fold), the worker stops cleanly, and a rerun starts
from the same history (the previous run's clicks are removed)."""

from __future__ import annotations

from recdb.tools.demo import run_demo
from tests.datasets.test_load import write_grouplens
from tests.support.tiny_model import tiny_text_encoder

DRAMA, COMEDY, HORROR = 8, 5, 11  # positions in u.item's 19 genre flags


def genre(g: int) -> str:
    """u.item's genre flags column with only genre ``g`` set."""
    return "|".join("1" if i == g else "0" for i in range(19))


def slice_() -> tuple[list, list]:
    movies = []
    for j in range(8):
        movies.append((1 + j, f"Quiet Family Drama {j} (1995)", genre(DRAMA)))
        movies.append((11 + j, f"Silly Comedy Caper {j} (1996)", genre(COMEDY)))
        movies.append((21 + j, f"Zombie Night Terror {j} (1981)", genre(HORROR)))
    ratings = [(1, 1 + j, 5, 880000000 + j) for j in range(4)]
    ratings += [(1, 11 + j, 4, 880000100 + j) for j in range(2)]
    ratings += [(2, 21 + j, 5, 880000200 + j) for j in range(5)]
    ratings += [(3, 21, 4, 880000300), (3, 22, 4, 880000301), (3, 11, 2, 880000302)]
    return movies, ratings


def test_demo_runs_twice_from_the_same_state(db_url, tmp_path):
    d = write_grouplens(tmp_path / "ml", *slice_())
    encoder = tiny_text_encoder()
    lines: list[str] = []
    kw = dict(
        user_id=1,
        path=d,
        text_encoder=encoder,
        device="cpu",
        progress=False,
        state_path=tmp_path / "state.json",
        say=lines.append,
    )

    first = run_demo(db_url, **kw)
    assert first.genre == "Horror"  # the genre user 1 has never watched
    assert len(first.clicked) == 3 and all(21 <= i < 29 for i in first.clicked)
    assert first.fresh_after == 3  # read before any worker ran: folded in by rerank()
    assert len(first.before) == len(first.after) == 10
    assert not {1, 2, 3, 4, 11, 12} & {r.item_id for r in first.before}  # seen: excluded
    assert not set(first.clicked) & {r.item_id for r in first.after}  # clicked: now seen
    assert [r.item_id for r in first.before] != [r.item_id for r in first.after]
    assert [r.item_id for r in first.caught_up] == [r.item_id for r in first.after]
    text = "\n".join(lines)
    assert "★ new" in text or "↑" in text or "↓" in text
    assert "stopped cleanly" in text and "timings" in text

    second = run_demo(db_url, **kw)
    assert "removed the 3 clicks" in "\n".join(lines)
    assert second.load["items_inserted"] == second.load["events_inserted"] == 0
    assert [r.item_id for r in second.before] == [r.item_id for r in first.before]
    assert second.clicked == first.clicked
