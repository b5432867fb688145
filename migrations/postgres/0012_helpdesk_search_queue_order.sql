-- Help desk search, PostgreSQL: nothing to change in the schema. SQLite's 0012 rebuilds its full-text index as one
-- row per ticket in queue order; here the tsvector column and its GIN index of 0009 stay, and the queries changed
-- (crates/helpdesk/src/store.rs: a search walks the first tickets of the queue in order, checking each, and only
-- when those hold less than a page takes the GIN index's matches and sorts them).
SELECT 1;
