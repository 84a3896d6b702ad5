//! `Directory` for the embedded store: domains, accounts and aliases, routed like the rest
//! (`mailstore.rs`): reads to the reader pool, writes to the writer thread.

use async_trait::async_trait;
use mail_types::{Address, Domain};

use store::{AccountId, Alias, Directory, StoreResult, UserRecord};

use crate::{SqliteStore, ops_dir};

#[async_trait]
impl Directory for SqliteStore {
    async fn add_domain(&self, domain: &Domain) -> StoreResult<()> {
        let domain = domain.clone();
        self.writer
            .run(move |tx| ops_dir::add_domain(tx.conn, &domain))
            .await
    }

    async fn delete_domain(&self, domain: &Domain) -> StoreResult<()> {
        let domain = domain.clone();
        self.writer
            .run(move |tx| ops_dir::delete_domain(tx.conn, &domain))
            .await
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        self.readers.read(ops_dir::list_domains).await
    }

    async fn is_local_domain(&self, domain: &Domain) -> StoreResult<bool> {
        let domain = domain.clone();
        self.readers
            .read_inline(move |c| ops_dir::is_local_domain(c, &domain))
            .await
    }

    async fn add_user(&self, address: &Address, password_hash: &str) -> StoreResult<AccountId> {
        let (address, hash) = (address.clone(), password_hash.to_string());
        self.writer
            .run(move |tx| ops_dir::add_user(tx, &address, &hash))
            .await
    }

    async fn add_users(
        &self,
        users: &[(Address, String)],
    ) -> StoreResult<Vec<store::NewUserOutcome>> {
        let users = users.to_vec();
        self.writer
            .run(move |tx| ops_dir::add_users(tx, &users))
            .await
    }

    async fn set_password(&self, address: &Address, password_hash: &str) -> StoreResult<()> {
        let (address, hash) = (address.clone(), password_hash.to_string());
        self.writer
            .run(move |tx| ops_dir::set_password(tx.conn, &address, &hash))
            .await
    }

    async fn set_scram(&self, address: &Address, scram: &str) -> StoreResult<()> {
        let (address, scram) = (address.clone(), scram.to_string());
        self.writer
            .run(move |tx| ops_dir::set_scram(tx.conn, &address, &scram))
            .await
    }

    async fn replace_password(
        &self,
        address: &Address,
        expected_hash: &str,
        new_hash: &str,
        scram: Option<&str>,
    ) -> StoreResult<bool> {
        let (address, expected, new) = (
            address.to_string(),
            expected_hash.to_string(),
            new_hash.to_string(),
        );
        let scram = scram.map(str::to_string);
        self.writer
            .run(move |tx| {
                ops_dir::replace_password(tx.conn, &address, &expected, &new, scram.as_deref())
            })
            .await
    }

    async fn pop3_expire(&self, address: &Address) -> StoreResult<Option<store::Pop3Expire>> {
        let address = address.clone();
        self.readers
            .read(move |c| ops_dir::pop3_expire(c, &address))
            .await
    }

    async fn set_pop3_expire(
        &self,
        address: &Address,
        choice: Option<store::Pop3Expire>,
    ) -> StoreResult<()> {
        let address = address.clone();
        self.writer
            .run(move |tx| ops_dir::set_pop3_expire(tx.conn, &address, choice))
            .await
    }

    async fn pop3_expire_choices(&self) -> StoreResult<Vec<(Address, store::Pop3Expire)>> {
        self.readers.read(ops_dir::pop3_expire_choices).await
    }

    async fn delete_user(&self, address: &Address) -> StoreResult<()> {
        let address = address.clone();
        self.writer
            .run(move |tx| ops_dir::delete_user(tx, &address))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.readers.read(ops_dir::list_users).await
    }

    async fn list_users_after(
        &self,
        after: Option<&Address>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        let after = after.cloned();
        self.readers
            .read(move |c| ops_dir::list_users_after(c, after.as_ref(), limit))
            .await
    }

    async fn find_user(&self, address: &Address) -> StoreResult<Option<UserRecord>> {
        let address = address.clone();
        self.readers
            .read_inline(move |c| ops_dir::find_user(c, &address))
            .await
    }

    async fn user_count(&self) -> StoreResult<u64> {
        self.readers.read(ops_dir::user_count).await
    }

    async fn add_alias(&self, source: &str, targets: &[Address]) -> StoreResult<()> {
        let (source, targets) = (source.to_string(), targets.to_vec());
        self.writer
            .run(move |tx| ops_dir::add_alias(tx.conn, &source, &targets))
            .await
    }

    async fn delete_alias(&self, source: &str) -> StoreResult<()> {
        let source = source.to_string();
        self.writer
            .run(move |tx| ops_dir::delete_alias(tx.conn, &source))
            .await
    }

    async fn list_aliases(&self) -> StoreResult<Vec<Alias>> {
        self.readers.read(ops_dir::list_aliases).await
    }

    async fn resolve_recipient(&self, address: &Address) -> StoreResult<Vec<AccountId>> {
        let address = address.clone();
        self.readers
            .read_inline(move |c| ops_dir::resolve_recipient(c, &address))
            .await
    }
}
