//! The integration suite: one test binary, one module per feature. Every test starts the real server on a free
//! port with a fresh database and talks HTTP; `both_engines!` runs each test on SQLite and on PostgreSQL.

mod helpers;

mod shell;
mod account;
mod admin;
mod api_v1;
mod audit;
mod cache;
mod isolation;
mod kernel;
mod oidc;
mod orgs;
mod outbox;
mod process;
mod remote_access;
mod gateway;
mod workstations;
mod helpdesk;
mod helpdesk_mail;
mod helpdesk_kb;
mod helpdesk_sla;
mod helpdesk_search;
mod helpdesk_reports;
mod helpdesk_attachments;
mod grants_companies;
mod grants_calls;
mod grants_applications;
mod grants_crash;
mod grants_public_pages;
mod grants_application_pages;
mod grants_staff_pages;
mod grants_review;
mod grants_ranking;
mod jobs_retention;
mod load_shedding;
mod grants_under_load;
