//! Writes several aggregates share inside their own transactions (an account, an invitation
//! and the mail that announces it), written once and compiled for each engine.

pub(crate) mod sqlite {
    type Db = sqlx::Sqlite;
    use crate::tokens::sqlite as tokens;
    include!("sql.rs");
}
pub(crate) mod postgres {
    type Db = sqlx::Postgres;
    use crate::tokens::postgres as tokens;
    include!("sql.rs");
}
