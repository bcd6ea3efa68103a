//! Writes several aggregates share inside their own transactions (an account, an invitation
//! and the mail that announces it), written once and compiled for each engine.

pub(crate) mod sqlite {
    type Db = sqlx::Sqlite;
    include!("sql.rs");
}
pub(crate) mod postgres {
    type Db = sqlx::Postgres;
    include!("sql.rs");
}
