#!/bin/sh
# Run once by the postgres image on an empty volume (docker-compose.yml mounts it into
# /docker-entrypoint-initdb.d): the relay's role, which is no superuser, and its database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v pw="$RELAY_DB_PASSWORD" <<'SQL'
create role backchannel_relay login nosuperuser nocreatedb nocreaterole password :'pw';
create database backchannel owner backchannel_relay;
SQL
