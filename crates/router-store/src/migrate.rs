//! The schema, embedded in the binary: one migration list per backend, because DDL differs
//! (identity columns, BOOLEAN, DOUBLE PRECISION) even where the queries do not.
//!
//! sqlx's `migrate!` macro would embed the directories too, but it needs sqlx's proc-macro
//! crate, which costs a good deal of build time for two files. Listing them here instead
//! keeps the same runner (checksums, the `_sqlx_migrations` table, PostgreSQL's advisory lock
//! so that replicas starting together do not race), and a test checks the lists match the
//! directories.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::connect::Backend;

/// `(version, description, sql)`, oldest first.
type Embedded = &'static [(i64, &'static str, &'static str)];

const SQLITE: Embedded = &[
    (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
    (2, "one_row_per_request", include_str!("../migrations/sqlite/0002_one_row_per_request.sql")),
];

const POSTGRES: Embedded = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (2, "one_row_per_request", include_str!("../migrations/postgres/0002_one_row_per_request.sql")),
];

fn embedded(backend: Backend) -> Embedded {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// The migrator for a backend.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    let migrations = embedded(backend)
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A migration file added to a directory but not to the list above would silently never
    /// run; this catches it, and a list that names a file under the wrong version.
    #[test]
    fn lists_match_the_migration_directories() {
        for (backend, dir) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dir);
            let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
                .map(|path| {
                    let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
                    let (version, description) = stem.split_once('_').unwrap();
                    let sql = std::fs::read_to_string(&path).unwrap();
                    (version.parse().unwrap(), description.to_owned(), sql)
                })
                .collect();
            files.sort();
            let listed: Vec<(i64, String, String)> = embedded(backend)
                .iter()
                .map(|&(v, d, sql)| (v, d.to_owned(), sql.to_owned()))
                .collect();
            assert_eq!(listed, files, "{}", dir.display());
        }
    }

    #[test]
    fn both_backends_have_the_same_versions() {
        let versions = |list: Embedded| list.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }
}
