#!/usr/bin/env bash
# One PostgreSQL database per shequ service, each owned by a login role of its
# own that can reach no other service's database:
#
#   service            role        database    password from
#   complaints         complaints  complaints  SHEQU_PG_COMPLAINTS_PASSWORD
#   merchant-alliance  alliance    alliance    SHEQU_PG_ALLIANCE_PASSWORD
#   pensioner-care     care        care        SHEQU_PG_CARE_PASSWORD
#
# The services create their tables themselves (migrations run at start), so
# this only makes the empty databases.
#
# deploy/compose.yaml mounts this file into the official postgres image's
# /docker-entrypoint-initdb.d/, which runs it once, when the data volume is
# first initialised (later password changes: ALTER ROLE, see deploy/README.md).
# It also works against any server, e.g. a managed one for Kubernetes, run by
# a superuser (or a role with CREATEROLE and CREATEDB):
#
#   PGHOST=db.example PGUSER=postgres PGPASSWORD=… \
#   SHEQU_PG_COMPLAINTS_PASSWORD=… SHEQU_PG_ALLIANCE_PASSWORD=… SHEQU_PG_CARE_PASSWORD=… \
#     deploy/postgres/init-databases.sh
#
# Running it again changes nothing: existing roles and databases are kept
# (and their passwords are not reset).
set -euo pipefail

# In the postgres image the entrypoint sets POSTGRES_USER (default postgres)
# and connects over the local socket; elsewhere libpq's PG* variables apply.
admin_user=${POSTGRES_USER:-${PGUSER:-postgres}}

create() { # role database password-variable
  local role=$1 database=$2 variable=$3
  local password=${!variable:-}
  if [[ -z $password ]]; then
    echo "init-databases: $variable is not set (the password of role $role)" >&2
    exit 1
  fi
  # psql variables (:'…' quotes a literal, :"…" an identifier), so no password
  # or name is ever pasted into SQL text; \gexec runs the generated statement
  # only when the role or database is missing.
  psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$admin_user" --dbname postgres \
    -v role="$role" -v database="$database" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'database', :'role', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
-- Only its owner (and superusers) may connect; PUBLIC's default CONNECT goes.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT ALL ON DATABASE :"database" TO :"role";
SQL
  echo "init-databases: database $database owned by role $role"
}

create complaints complaints SHEQU_PG_COMPLAINTS_PASSWORD
create alliance alliance SHEQU_PG_ALLIANCE_PASSWORD
create care care SHEQU_PG_CARE_PASSWORD
