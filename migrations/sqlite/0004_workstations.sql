-- Remote workstations: the inventory of each organisation, the history of their reachability, and the bookings of
-- pooled seats. Integers are INTEGER so that both engines decode them as i64.
CREATE TABLE workstations (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    -- Lowercase DNS name or IP address; unique in the organisation whatever its case (index below).
    hostname TEXT NOT NULL,
    address TEXT,
    protocol TEXT NOT NULL CHECK (protocol IN ('rdp', 'vnc', 'ssh')),
    port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    os TEXT,
    location TEXT,
    -- ' tag1 tag2 ' (each tag between spaces, '' for none): `LIKE '% tag %'` finds one on both engines.
    tags TEXT NOT NULL DEFAULT '',
    mac TEXT,
    mode TEXT NOT NULL CHECK (mode IN ('dedicated', 'pooled')),
    assigned_account_id BLOB REFERENCES accounts(id),
    status TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'online', 'offline')),
    last_probe_at TEXT,
    last_latency_ms INTEGER,
    -- When the reachability probe should next look at it; a node that claims it moves this forward.
    probe_due_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK (mode = 'dedicated' OR assigned_account_id IS NULL)
);
CREATE UNIQUE INDEX workstations_hostname ON workstations(org_id, lower(hostname));
CREATE INDEX workstations_assignee ON workstations(assigned_account_id) WHERE assigned_account_id IS NOT NULL;
CREATE INDEX workstations_probe_due ON workstations(probe_due_at);

-- Changes of reachability (not every probe): when a workstation went online or offline, and why.
CREATE TABLE workstation_probes (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    workstation_id BLOB NOT NULL REFERENCES workstations(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    status TEXT NOT NULL,
    latency_ms INTEGER,
    error TEXT
);
CREATE INDEX workstation_probes_workstation ON workstation_probes(workstation_id, at);

-- No two live bookings of a workstation overlap: the booking transaction checks for an overlap under the write lock
-- (`BEGIN IMMEDIATE` serialises writers) before it inserts.
CREATE TABLE workstation_bookings (
    id BLOB PRIMARY KEY,
    org_id BLOB NOT NULL REFERENCES organisations(id),
    workstation_id BLOB NOT NULL REFERENCES workstations(id) ON DELETE CASCADE,
    account_id BLOB NOT NULL REFERENCES accounts(id),
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    cancelled_at TEXT,
    created_at TEXT NOT NULL,
    CHECK (starts_at < ends_at)
);
CREATE INDEX workstation_bookings_workstation ON workstation_bookings(workstation_id, starts_at) WHERE cancelled_at IS NULL;
CREATE INDEX workstation_bookings_account ON workstation_bookings(account_id, starts_at) WHERE cancelled_at IS NULL;
CREATE INDEX workstation_bookings_org ON workstation_bookings(org_id, ends_at);
