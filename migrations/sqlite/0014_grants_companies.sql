-- Funding calls: the companies that apply. A company is not any organisation's tenant data: it applies to the calls
-- of any organisation, so its rows carry no org_id and are reached through its representatives. The person who
-- registers a company is its owner (manages the delegates); owners and delegates act for it alike.
CREATE TABLE companies (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    -- 11 digits with their check digit; one company per partita IVA on the platform.
    partita_iva TEXT NOT NULL UNIQUE,
    -- 11 digits (companies) or 16 characters (a sole proprietor's personal code, omocodia accepted).
    tax_code TEXT NOT NULL,
    pec TEXT NOT NULL,
    legal_rep_name TEXT NOT NULL,
    legal_rep_tax_code TEXT NOT NULL,
    employees INTEGER NOT NULL CHECK (employees >= 0),
    -- ATECO code as written with its dots (62.01.00).
    sector TEXT NOT NULL,
    -- ISTAT region codes of its sites, space-separated ("03 05").
    site_regions TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    created_by BLOB NOT NULL REFERENCES accounts(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE company_representatives (
    company_id BLOB NOT NULL REFERENCES companies(id),
    account_id BLOB NOT NULL REFERENCES accounts(id),
    role TEXT NOT NULL CHECK (role IN ('owner', 'delegate')),
    added_by BLOB NOT NULL REFERENCES accounts(id),
    added_at TEXT NOT NULL,
    PRIMARY KEY (company_id, account_id)
);
CREATE INDEX company_representatives_account ON company_representatives(account_id);

-- De minimis aid the company declares it received (EU 2023/2831: EUR 300,000 over three rolling years).
CREATE TABLE company_aid (
    id BLOB PRIMARY KEY,
    company_id BLOB NOT NULL REFERENCES companies(id),
    granted_on TEXT NOT NULL,          -- a date, YYYY-MM-DD
    amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
    granting_body TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX company_aid_company ON company_aid(company_id, granted_on);
