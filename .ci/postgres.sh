# Sourced by .ci/run: makes sure PostgreSQL is up on 127.0.0.1:5432 and exports
# GATEWAY_TEST_POSTGRES for the PostgreSQL store's tests. Where PostgreSQL's tools are absent,
# those tests skip.
if command -v pg_isready >/dev/null 2>&1; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432 && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -n 1)" main start \
            || true  # already running, or cannot start: pg_isready below decides
    fi
    for _ in $(seq 1 20); do
        pg_isready -q -h 127.0.0.1 -p 5432 && break
        sleep 0.5
    done
    if pg_isready -q -h 127.0.0.1 -p 5432; then
        psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" \
            | grep -q 1 || createdb -h 127.0.0.1 -U postgres test
        export GATEWAY_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/test
    else
        echo "PostgreSQL is not reachable on 127.0.0.1:5432: its tests skip" >&2
    fi
fi
