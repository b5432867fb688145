-- Remote access (the VPN): networks (address pools) per organisation, their gateways, access groups, and the
-- employees' devices. A device's private key is never stored: the table has no column for it.
CREATE TABLE vpn_networks (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    name TEXT NOT NULL,
    ipv4_cidr TEXT NOT NULL,
    ipv6_cidr TEXT,
    -- DNS servers for the devices, space-separated.
    dns TEXT NOT NULL DEFAULT '',
    require_approval BOOLEAN NOT NULL DEFAULT FALSE,
    default_expiry_days BIGINT NOT NULL DEFAULT 90,
    -- Bumped in the same transaction as any change of the peer set or of the access lists: the gateways'
    -- long-poll waits for it to move.
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX vpn_networks_org ON vpn_networks(org_id);

CREATE TABLE vpn_gateways (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    network_id UUID NOT NULL REFERENCES vpn_networks(id),
    name TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    port BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    -- The internal networks it routes, space-separated prefixes.
    routes TEXT NOT NULL DEFAULT '',
    token_hash TEXT NOT NULL UNIQUE,
    last_seen_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (network_id, name)
);
CREATE INDEX vpn_gateways_org ON vpn_gateways(org_id);

CREATE TABLE vpn_access_groups (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    network_id UUID NOT NULL REFERENCES vpn_networks(id),
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (network_id, name)
);
CREATE INDEX vpn_access_groups_org ON vpn_access_groups(org_id);

-- Who a group is for: a role in the organisation (role set) or one account (account_id set).
CREATE TABLE vpn_access_group_members (
    group_id UUID NOT NULL REFERENCES vpn_access_groups(id) ON DELETE CASCADE,
    org_id UUID NOT NULL REFERENCES organisations(id),
    role TEXT,
    account_id UUID REFERENCES accounts(id),
    CHECK ((role IS NULL) <> (account_id IS NULL))
);
CREATE INDEX vpn_access_group_members_group ON vpn_access_group_members(group_id);

-- What a group may reach: internal prefixes.
CREATE TABLE vpn_access_group_allow (
    group_id UUID NOT NULL REFERENCES vpn_access_groups(id) ON DELETE CASCADE,
    org_id UUID NOT NULL REFERENCES organisations(id),
    cidr TEXT NOT NULL,
    PRIMARY KEY (group_id, cidr)
);

CREATE TABLE vpn_devices (
    id UUID PRIMARY KEY,
    org_id UUID NOT NULL REFERENCES organisations(id),
    network_id UUID NOT NULL REFERENCES vpn_networks(id),
    account_id UUID NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    -- Offset of the device's addresses from the pools' network addresses (the gateway is 1, devices from 2).
    slot BIGINT NOT NULL,
    address_v4 TEXT NOT NULL,
    address_v6 TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'revoked', 'expired')),
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_handshake_at TIMESTAMPTZ,
    rx_bytes BIGINT NOT NULL DEFAULT 0,
    tx_bytes BIGINT NOT NULL DEFAULT 0,
    endpoint TEXT
);
-- A live device (pending or active) holds its key and its addresses alone; a revoked or expired one gives them back.
CREATE UNIQUE INDEX vpn_devices_live_key ON vpn_devices(network_id, public_key) WHERE state IN ('pending', 'active');
CREATE UNIQUE INDEX vpn_devices_live_slot ON vpn_devices(network_id, slot) WHERE state IN ('pending', 'active');
CREATE UNIQUE INDEX vpn_devices_live_v4 ON vpn_devices(network_id, address_v4) WHERE state IN ('pending', 'active');
CREATE INDEX vpn_devices_org_account ON vpn_devices(org_id, account_id);
CREATE INDEX vpn_devices_live_expiry ON vpn_devices(expires_at) WHERE state IN ('pending', 'active');
