"""A multi-host test bed in Linux network namespaces: two app hosts (`switchboard serve
--workers 2` each), a PostgreSQL host, a Redis host and an HAProxy host on one bridge,
with faults injected between them while a workload runs (issue 13)."""
