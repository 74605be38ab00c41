# shellcheck shell=bash
# Sourced by .ci/run (with set -euo pipefail) before `make test`: starts a
# throwaway PostgreSQL cluster on 127.0.0.1 for the store tests and exports
# FERRY_TEST_POSTGRES. Idempotent: a second run reuses the running cluster.
#
# The cluster is for tests only: trust authentication, listening on loopback
# only, fsync off. Override the port or directory with FERRY_PG_PORT and
# FERRY_PG_DIR. Stop it with:
#   runuser -u postgres -- pg_ctl -D /tmp/ferry-ci-postgres/data stop

ferry_setup_postgres() {
	local port=${FERRY_PG_PORT:-55432}
	local dir=${FERRY_PG_DIR:-/tmp/ferry-ci-postgres}
	local bin

	if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
		echo "installing: postgresql"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	fi
	# Debian's server binaries are not on PATH (only wrappers and, on some
	# machines, symlinks in /usr/local/bin); use the newest installed version.
	bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

	# The server refuses to run as root: as root, run it as postgres.
	local -a as_pg=()
	if [ "$(id -u)" = 0 ]; then
		as_pg=(runuser -u postgres --)
	fi

	if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
		if [ ! -f "$dir/data/PG_VERSION" ]; then
			rm -rf "$dir"
			mkdir -p "$dir"
			if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
			"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
				{ cat "$dir/initdb.log" >&2; return 1; }
		fi
		"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
			start >/dev/null || { tail -n 20 "$dir/server.log" >&2; return 1; }
	fi

	if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'ferry_test'" | grep -q 1; then
		"$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres ferry_test
	fi
	export FERRY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/ferry_test?sslmode=disable"
	echo "PostgreSQL for tests: $FERRY_TEST_POSTGRES"
}

ferry_setup_postgres
unset -f ferry_setup_postgres
