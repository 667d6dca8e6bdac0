//! The store against real databases: SQLite in memory and in a file, and PostgreSQL when
//! `LLM_ROUTER_TEST_POSTGRES` is set to a URL (the variant is skipped, with a note, when it is
//! not). One test binary, so the suite links once.

mod common;
mod measure;
mod reads;
mod schema;
mod stats;
mod writer;
