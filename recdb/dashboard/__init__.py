"""`recdb serve`: a read-only, server-rendered dashboard (status, users, items, models,
results) and the database gauges at /metrics.

`app` builds the Starlette application, `pages` reads each page's data, `db` is the
read-only pool (recdb_readonly, read-only transactions), `params` parses ids from URLs,
`results` reads the files `recdb eval` and `recdb bench` wrote. Templates and the
stylesheet ship in `templates/` and `static/`; there is no JavaScript.
"""

from recdb.dashboard.app import create_app
from recdb.dashboard.results import ResultFiles

__all__ = ["ResultFiles", "create_app"]
