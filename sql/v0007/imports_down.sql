-- recdb 0007 down: the import ledger (imports.sql).
DROP TABLE recdb.imports;
