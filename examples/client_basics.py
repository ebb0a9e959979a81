# examples/client_basics.py
import recdb
from recdb.client import Event, Item, UnknownKind

with recdb.Client() as client:  # RECDB_DATABASE_URL, else the embedded server
    client.upsert_items(
        [
            Item(7, "Heat (1995)", "Crime thriller ...", {"genre": ["Crime"]}),
            Item(8, "Casino (1995)", "Crime drama ...", {"genre": ["Crime", "Drama"]}),
            Item(9, "Toy Story (1995)", "Animated ...", {"genre": ["Animation"]}),
        ]
    )
    client.track(42, 7, "click")  # counts in the very next rerank(), worker or not
    client.track_many([Event(42, 9, "rate", 2.0), Event(43, 8, "view")])

    for r in client.rerank(42, k=10, filter={"genre": ["Crime"]}):
        print(r.rank, r.item_id, f"{r.score:.3f}", r.reason, r.fresh_events)
    print([r.item_id for r in client.rerank(42, candidates=[9, 8, 7])])

    try:
        client.track(42, 7, "clik")
    except UnknownKind as e:  # RecdbError subclasses keep the server's message and SQLSTATE
        print(e.sqlstate, e)
