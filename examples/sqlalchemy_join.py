# examples/sqlalchemy_join.py
import sqlalchemy as sa

from recdb.sqlalchemy import rerank

shop = sa.MetaData()
products = sa.Table(  # the app's own table; item_id is recdb.items.item_id
    "products",
    shop,
    sa.Column("item_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
)

rec = rerank(sa.bindparam("user_id"), k=100)  # recdb.rerank(...) as a FROM item
in_stock_under = (
    sa.select(products.c.item_id, products.c.name, products.c.price, rec.c.score, rec.c.reason)
    .join_from(rec, products, products.c.item_id == rec.c.item_id)
    .where(products.c.stock > 0, products.c.price <= sa.bindparam("max_price"))
    .order_by(rec.c.rank)
    .limit(20)
)


def recommend(engine: sa.Engine, user_id: int, max_price: float) -> list[sa.Row]:
    with engine.connect() as conn:
        return list(conn.execute(in_stock_under, {"user_id": user_id, "max_price": max_price}))
