//! Small helpers shared by the queries: statements with a variable number of bound values,
//! and the checked conversions between Rust's unsigned numbers and the database's BIGINT.

use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Row};

use crate::error::StoreError;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Text(String),
    Int(i64),
}

/// SQL text built piece by piece, with `$1..$N` placeholders numbered as values are bound.
/// (sqlx's `QueryBuilder` writes `?` placeholders for the Any driver, which PostgreSQL
/// rejects.)
#[derive(Debug, Default)]
pub(crate) struct Statement {
    sql: String,
    args: Vec<Arg>,
}

impl Statement {
    pub(crate) fn new(sql: &str) -> Statement {
        Statement { sql: sql.to_owned(), args: Vec::new() }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds a text value and returns its placeholder, for use in the next `push`.
    pub(crate) fn text(&mut self, value: &str) -> String {
        self.args.push(Arg::Text(value.to_owned()));
        format!("${}", self.args.len())
    }

    /// Binds an integer value and returns its placeholder.
    pub(crate) fn int(&mut self, value: i64) -> String {
        self.args.push(Arg::Int(value));
        format!("${}", self.args.len())
    }

    pub(crate) fn query(self) -> Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for arg in self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        query
    }
}

/// Accumulates `AND`-joined conditions into a `WHERE` clause.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    parts: Vec<String>,
}

impl Conditions {
    pub(crate) fn add(&mut self, condition: String) {
        self.parts.push(condition);
    }

    pub(crate) fn write_to(&self, statement: &mut Statement) {
        if !self.parts.is_empty() {
            statement.push(" WHERE ").push(&self.parts.join(" AND "));
        }
    }
}

/// An unsigned number as a BIGINT, for writing.
pub(crate) fn to_db(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::InvalidRecord(format!("{what} {value} is too large to store")))
}

/// A BIGINT read back into the unsigned type it was written from.
pub(crate) fn from_db<T: TryFrom<i64>>(value: i64, column: &'static str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt { column, value: value.to_string() })
}

pub(crate) fn get_i64(row: &AnyRow, column: &'static str) -> Result<i64, StoreError> {
    Ok(row.try_get::<i64, _>(column)?)
}

pub(crate) fn get_opt_i64(row: &AnyRow, column: &'static str) -> Result<Option<i64>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

pub(crate) fn get_u64(row: &AnyRow, column: &'static str) -> Result<u64, StoreError> {
    from_db(get_i64(row, column)?, column)
}

pub(crate) fn get_opt_u64(row: &AnyRow, column: &'static str) -> Result<Option<u64>, StoreError> {
    get_opt_i64(row, column)?.map(|value| from_db(value, column)).transpose()
}

pub(crate) fn get_f64(row: &AnyRow, column: &'static str) -> Result<f64, StoreError> {
    Ok(row.try_get::<f64, _>(column)?)
}

pub(crate) fn get_opt_f64(row: &AnyRow, column: &'static str) -> Result<Option<f64>, StoreError> {
    Ok(row.try_get::<Option<f64>, _>(column)?)
}

pub(crate) fn get_string(row: &AnyRow, column: &'static str) -> Result<String, StoreError> {
    Ok(row.try_get::<String, _>(column)?)
}

pub(crate) fn get_opt_string(
    row: &AnyRow,
    column: &'static str,
) -> Result<Option<String>, StoreError> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

/// A stored word parsed back into its enum.
pub(crate) fn get_word<T>(
    row: &AnyRow,
    column: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text = get_string(row, column)?;
    parse(&text).ok_or(StoreError::Corrupt { column, value: text })
}

/// The epoch-millisecond clock, for the few timestamps the store sets itself.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_binding_order() {
        let mut statement = Statement::new("SELECT 1 FROM t");
        let mut conditions = Conditions::default();
        let a = statement.text("x");
        conditions.add(format!("(a = {a} OR b = {a})"));
        let c = statement.int(7);
        conditions.add(format!("c >= {c}"));
        conditions.write_to(&mut statement);
        assert_eq!(statement.sql, "SELECT 1 FROM t WHERE (a = $1 OR b = $1) AND c >= $2");
        assert_eq!(statement.args, [Arg::Text("x".into()), Arg::Int(7)]);
    }

    #[test]
    fn conversions_refuse_what_does_not_fit() {
        assert_eq!(to_db(5, "tokens").unwrap(), 5);
        assert!(matches!(to_db(u64::MAX, "tokens"), Err(StoreError::InvalidRecord(_))));
        assert_eq!(from_db::<u16>(200, "http_status").unwrap(), 200);
        assert!(matches!(from_db::<u64>(-1, "latency_ms"), Err(StoreError::Corrupt { .. })));
    }
}
