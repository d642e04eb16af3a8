-- Tollgate telemetry on a sharded, replicated ClickHouse cluster.
--
-- `tollgate telemetry migrate` creates the single-node form. For a cluster, run this file once
-- (clickhouse-client --multiquery < cluster.sql) after replacing `tollgate_cluster` with the
-- cluster name from remote_servers. It needs ZooKeeper (or ClickHouse Keeper) and the
-- {shard} and {replica} macros on every node. Works from 18.16 on: no LowCardinality, no
-- DateTime64 (ts_ms keeps the millisecond).
--
-- Gateways insert into the Distributed table `tollgate.requests` (point telemetry.clickhouse.urls
-- at several nodes; batches spread across them and fail over). Rows are sharded by key so one
-- key's rollups live on one shard. Retried batches are identical blocks, which
-- ReplicatedMergeTree deduplicates (insert_deduplicate), so a retry after a lost answer does
-- not double-count.

CREATE DATABASE IF NOT EXISTS tollgate ON CLUSTER tollgate_cluster;

CREATE TABLE IF NOT EXISTS tollgate.requests_local ON CLUSTER tollgate_cluster (
    ts DateTime,
    ts_ms UInt64,
    request_id String,
    key_id UInt64,
    key_prefix String,
    network String,
    method String,
    batch_size UInt32,
    compute_units UInt32,
    http_status UInt16,
    rpc_error_code Int32,
    cache String,
    upstream String,
    attempts UInt8,
    latency_us UInt64,
    upstream_latency_us UInt64,
    bytes_in UInt32,
    bytes_out UInt32,
    client_ip String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/tollgate/requests_local', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (network, key_prefix, ts);

CREATE TABLE IF NOT EXISTS tollgate.requests ON CLUSTER tollgate_cluster AS tollgate.requests_local
ENGINE = Distributed(tollgate_cluster, tollgate, requests_local, cityHash64(key_prefix));

CREATE TABLE IF NOT EXISTS tollgate.requests_hourly_local ON CLUSTER tollgate_cluster (
    hour DateTime,
    key_id UInt64,
    key_prefix String,
    network String,
    requests UInt64,
    compute_units UInt64,
    errors UInt64,
    bytes_in UInt64,
    bytes_out UInt64
) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/tollgate/requests_hourly_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (key_prefix, network, hour, key_id);

-- The rollup is fed on each shard from its local rows.
CREATE MATERIALIZED VIEW IF NOT EXISTS tollgate.requests_hourly_mv ON CLUSTER tollgate_cluster
TO tollgate.requests_hourly_local AS
SELECT
    toStartOfHour(ts) AS hour, key_id, key_prefix, network,
    count() AS requests,
    sum(toUInt64(compute_units)) AS compute_units,
    sum(toUInt64(http_status >= 400 OR rpc_error_code != 0)) AS errors,
    sum(toUInt64(bytes_in)) AS bytes_in,
    sum(toUInt64(bytes_out)) AS bytes_out
FROM tollgate.requests_local
GROUP BY hour, key_id, key_prefix, network;

-- `tollgate usage` reads tollgate.requests_hourly: across shards, through this table.
CREATE TABLE IF NOT EXISTS tollgate.requests_hourly ON CLUSTER tollgate_cluster AS tollgate.requests_hourly_local
ENGINE = Distributed(tollgate_cluster, tollgate, requests_hourly_local, cityHash64(key_prefix));

-- Usage by method (the admin API's `by=method`), fed like the hourly rollup.
CREATE TABLE IF NOT EXISTS tollgate.requests_methods_daily_local ON CLUSTER tollgate_cluster (
    day Date,
    key_prefix String,
    network String,
    method String,
    requests UInt64,
    compute_units UInt64,
    errors UInt64
) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/tollgate/requests_methods_daily_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (key_prefix, day, network, method);

CREATE MATERIALIZED VIEW IF NOT EXISTS tollgate.requests_methods_daily_mv ON CLUSTER tollgate_cluster
TO tollgate.requests_methods_daily_local AS
SELECT
    toDate(ts) AS day, key_prefix, network, method,
    count() AS requests,
    sum(toUInt64(compute_units)) AS compute_units,
    sum(toUInt64(http_status >= 400 OR rpc_error_code != 0)) AS errors
FROM tollgate.requests_local
GROUP BY day, key_prefix, network, method;

CREATE TABLE IF NOT EXISTS tollgate.requests_methods_daily ON CLUSTER tollgate_cluster AS tollgate.requests_methods_daily_local
ENGINE = Distributed(tollgate_cluster, tollgate, requests_methods_daily_local, cityHash64(key_prefix));
