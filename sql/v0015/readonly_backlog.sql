-- The co-visitation backlog (users the worker re-encoded whose co-visitation step is
-- still pending: the neighbour lists trail them) is a metrics gauge, and `recdb serve`
-- reads the gauges as recdb_readonly.
GRANT SELECT ON recdb.covisit_queue TO recdb_readonly;
