"""recdb.sqlalchemy against the real database: the tables match the schema, and the
README's query joins an app's own table to rerank() in one statement."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from recdb.client import Client, Item
from recdb.sqlalchemy import events, items, metadata, rerank, similar_items
from tests.support import REPO_ROOT
from tests.support.builders import add_events, axis, set_user_vector


def engine_for(url: str) -> sa.Engine:
    """An engine on a libpq conninfo string (what the fixtures hand out)."""
    return sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(url))


@pytest.fixture
def app_engine(app_url: str) -> Iterator[sa.Engine]:
    engine = engine_for(app_url)
    yield engine
    engine.dispose()


# vector and xid8: types of the columns the tables leave out, unknown to reflection
@pytest.mark.filterwarnings("ignore:Did not recognize type:sqlalchemy.exc.SAWarning")
def test_tables_match_the_migrated_schema(db_url):
    engine = engine_for(db_url)
    inspector = sa.inspect(engine)
    dialect = engine.dialect
    assert metadata.schema == "recdb"
    for table in (items, events):
        in_db = {c["name"]: c for c in inspector.get_columns(table.name, schema="recdb")}
        for col in table.columns:
            assert col.name in in_db, f"{table.name}.{col.name}"
            got = in_db[col.name]
            assert col.type.compile(dialect) == got["type"].compile(dialect), col.name
            assert col.nullable == got["nullable"], col.name
        pk = inspector.get_pk_constraint(table.name, schema="recdb")["constrained_columns"]
        assert {c.name for c in table.primary_key} == set(pk)
    engine.dispose()


@pytest.fixture
def shop(conn, db_url, catalog, app_engine) -> dict[str, object]:
    """The README's products table, made by the app's DBA and readable by the app role;
    one product per catalog item, every third out of stock, prices 5..65."""
    example = runpy.run_path(str(REPO_ROOT / "examples" / "sqlalchemy_join.py"))
    admin = engine_for(db_url)
    example["shop"].create_all(admin)
    admin.dispose()
    conn.execute("GRANT SELECT ON products TO recdb_app")
    products = {
        r["item_id"]: (r["title"], Decimal((r["item_id"] % 7) * 10 + 5), r["item_id"] % 3)
        for r in catalog
    }
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO products (item_id, name, price, stock) VALUES (%s, %s, %s, %s)",
            [(i, *p) for i, p in products.items()],
        )
    add_events(conn, 1, [200, 201], "click")
    set_user_vector(conn, 1, axis(1))
    return {"example": example, "products": products}


def test_the_readme_join_is_rerank_filtered_by_the_apps_rule(shop, app_engine, app_url):
    products = shop["products"]
    got = shop["example"]["recommend"](app_engine, 1, 40)
    with Client(app_url) as client:
        ranked = client.rerank(1, k=100)
    expected = [
        (r.item_id, products[r.item_id][0], products[r.item_id][1], r.score, r.reason)
        for r in ranked
        if products[r.item_id][2] > 0 and products[r.item_id][1] <= 40
    ][:20]
    assert [tuple(row) for row in got] == expected  # same rows, rerank()'s order
    assert 10 < len(expected) < len([r for r in ranked if r.item_id in products])
    assert [row.item_id for row in got][:3] == [
        r.item_id for r in ranked if products[r.item_id][2] and products[r.item_id][1] <= 40
    ][:3]


def test_rerank_arguments_and_candidates_from_a_subquery(shop, app_engine, app_url):
    products = shop["example"]["products"]
    in_stock = (
        sa.select(sa.func.array_agg(products.c.item_id))
        .where(products.c.stock > 0)
        .scalar_subquery()
    )
    with Client(app_url) as client, app_engine.connect() as conn:
        for kwargs in [
            {"k": 5, "filter": {"topic": 2}},
            {"k": 30, "exclude_seen": False},
            {"candidates": [310, 9999, 205, 310]},
        ]:
            rec = rerank(1, **kwargs)
            rows = conn.execute(sa.select(rec).order_by(rec.c.rank)).all()
            assert [tuple(r) for r in rows] == [
                (r.rank, r.item_id, r.score, r.because_item_id, r.reason, r.fresh_events)
                for r in client.rerank(1, **kwargs)
            ], kwargs
        rec = rerank(sa.bindparam("user"), candidates=in_stock)
        ranked = conn.execute(sa.select(rec.c.item_id).order_by(rec.c.rank), {"user": 1}).all()
        in_stock_ids = {i for i, p in shop["products"].items() if p[2] > 0}
        assert {r.item_id for r in ranked} == in_stock_ids  # exactly the app's candidates
        assert [r.item_id for r in ranked] == [
            r.item_id for r in client.rerank(1, candidates=sorted(in_stock_ids))
        ]


def test_similar_items_joins_the_titles(catalog, app_engine, app_url):
    sim = similar_items(200, k=3)
    stmt = (
        sa.select(items.c.item_id, items.c.title, sim.c.score)
        .join_from(sim, items, items.c.item_id == sim.c.item_id)
        .order_by(sim.c.rank)
    )
    with app_engine.connect() as conn:
        rows = conn.execute(stmt).all()
    with Client(app_url) as client:
        expected = client.similar_items(200, k=3)
    assert [(r.item_id, r.score) for r in rows] == [(s.item_id, s.score) for s in expected]
    assert rows[0].title.startswith("topic 1 item")


def test_the_app_role_writes_through_the_core_tables(app_engine, conn, db_url, catalog):
    with app_engine.begin() as c:
        c.execute(sa.insert(items).values(item_id=1, title="via sqlalchemy", attrs={"a": 1}))
        c.execute(sa.update(items).where(items.c.item_id == 100).values(title="renamed"))
        result = c.execute(sa.insert(events).values(user_id=9, item_id=1, kind="click"))
        assert result.inserted_primary_key.user_id == 9  # event_id is the server's
        row = c.execute(
            sa.select(events.c.kind, events.c.occurred_at).where(events.c.user_id == 9)
        ).one()
        assert row.kind == "click" and row.occurred_at is not None
    queued = conn.execute("SELECT item_id FROM recdb.item_queue WHERE item_id IN (1, 100)")
    assert sorted(r[0] for r in queued) == [1, 100]
    with Client(db_url) as client:
        client.upsert_items([Item(2, "two")])
    with app_engine.connect() as c:
        titles = c.execute(sa.select(items.c.title).where(items.c.item_id.in_([1, 2]))).all()
    assert sorted(t for (t,) in titles) == ["two", "via sqlalchemy"]
