//! Schema migrations, run at start-up (`authbridge migrate` runs them alone).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_core_tables;
mod m20261123_000002_create_token_tables;
mod m20261123_000003_create_one_time_keys;
mod m20261123_000004_index_user_email;
mod m20261203_000005_add_revocation_points;
mod m20261203_000006_add_social_account_app;
mod m20261203_000007_create_resource_clients;
mod m20261203_000008_create_audit_events;
mod m20261204_000009_create_standing_changes;
mod m20261204_000010_add_provider_settings_and_tokens;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_core_tables::Migration),
            Box::new(m20261123_000002_create_token_tables::Migration),
            Box::new(m20261123_000003_create_one_time_keys::Migration),
            Box::new(m20261123_000004_index_user_email::Migration),
            Box::new(m20261203_000005_add_revocation_points::Migration),
            Box::new(m20261203_000006_add_social_account_app::Migration),
            Box::new(m20261203_000007_create_resource_clients::Migration),
            Box::new(m20261203_000008_create_audit_events::Migration),
            Box::new(m20261204_000009_create_standing_changes::Migration),
            Box::new(m20261204_000010_add_provider_settings_and_tokens::Migration),
        ]
    }
}
