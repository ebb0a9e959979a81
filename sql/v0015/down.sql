REVOKE SELECT ON recdb.covisit_queue FROM recdb_readonly;
