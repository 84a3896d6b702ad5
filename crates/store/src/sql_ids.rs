//! Ids as SQL values for the backends (features `rusqlite` and `postgres`): an account id is
//! its number; a mailbox id binds as the mailbox's number (the row's key), while reading one
//! back needs the account too, so backends build it with [`crate::MailboxId::new`].

use crate::{AccountId, MailboxId};

#[cfg(feature = "rusqlite")]
mod sqlite {
    use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

    use super::{AccountId, MailboxId};

    impl ToSql for AccountId {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(ToSqlOutput::from(self.0))
        }
    }

    impl FromSql for AccountId {
        fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
            i64::column_result(value).map(AccountId)
        }
    }

    impl ToSql for MailboxId {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(ToSqlOutput::from(self.number))
        }
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::error::Error;

    use bytes::BytesMut;
    use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

    use super::{AccountId, MailboxId};

    type Boxed = Box<dyn Error + Sync + Send>;

    impl ToSql for AccountId {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Boxed> {
            self.0.to_sql(ty, out)
        }
        fn accepts(ty: &Type) -> bool {
            <i64 as ToSql>::accepts(ty)
        }
        to_sql_checked!();
    }

    impl<'a> FromSql<'a> for AccountId {
        fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Boxed> {
            i64::from_sql(ty, raw).map(AccountId)
        }
        fn accepts(ty: &Type) -> bool {
            <i64 as FromSql>::accepts(ty)
        }
    }

    impl ToSql for MailboxId {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Boxed> {
            self.number.to_sql(ty, out)
        }
        fn accepts(ty: &Type) -> bool {
            <i64 as ToSql>::accepts(ty)
        }
        to_sql_checked!();
    }
}
