-- Group roles (NOLOGIN) as migration 0002 creates them, and the login roles that use them.
-- psql variables: app_password, worker_password.
CREATE ROLE recdb_app NOLOGIN;
CREATE ROLE recdb_worker NOLOGIN;
CREATE ROLE recdb_readonly NOLOGIN;
CREATE ROLE shop_app LOGIN PASSWORD :'app_password' IN ROLE recdb_app;
CREATE ROLE recdb_worker_login LOGIN PASSWORD :'worker_password' IN ROLE recdb_worker;
