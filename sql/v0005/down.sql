-- recdb 0005 downgrade. The 0004 function definitions are restored by the revision.
REVOKE INSERT ON recdb.items, recdb.events FROM recdb_app;
GRANT INSERT ON recdb.items, recdb.events TO recdb_app;
DROP VIEW recdb.maintenance_status;
DROP TABLE recdb.maintenance;
DROP TABLE recdb.erasures;
ALTER TABLE recdb.settings DROP COLUMN event_retention, DROP COLUMN max_future_skew;
ALTER TABLE recdb.users DROP COLUMN encoded_snapshot;
ALTER TABLE recdb.events DROP COLUMN txid;
