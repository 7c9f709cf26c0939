//! Users, sites, social apps and accounts, email addresses and JWT signing keys.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_auto(Users::Id))
                    .col(string_uniq(Users::Username))
                    .col(string(Users::Email))
                    .col(string(Users::FirstName))
                    .col(string(Users::LastName))
                    .col(string(Users::Password))
                    .col(boolean(Users::IsActive))
                    .col(boolean(Users::IsStaff))
                    .col(boolean(Users::IsSuperuser))
                    .col(timestamp_with_time_zone(Users::DateJoined))
                    .col(timestamp_with_time_zone_null(Users::LastLogin))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sites::Table)
                    .col(pk_auto(Sites::Id))
                    .col(string_uniq(Sites::Domain))
                    .col(string(Sites::Name))
                    .to_owned(),
            )
            .await?;
        // Django's sites framework ships site 1; SITE_ID = 1 settings rely on it.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Sites::Table)
                    .columns([Sites::Domain, Sites::Name])
                    .values_panic(["example.com".into(), "example.com".into()])
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SocialApps::Table)
                    .col(pk_auto(SocialApps::Id))
                    .col(string(SocialApps::Provider))
                    .col(string(SocialApps::Name))
                    .col(string(SocialApps::ClientId))
                    .col(string(SocialApps::Secret))
                    .col(string(SocialApps::AdminKey))
                    .col(text(SocialApps::AppIds))
                    .col(text(SocialApps::ClientKeys))
                    .col(timestamp_with_time_zone(SocialApps::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SocialAppSites::Table)
                    .col(integer(SocialAppSites::SocialAppId))
                    .col(integer(SocialAppSites::SiteId))
                    .primary_key(
                        Index::create()
                            .col(SocialAppSites::SocialAppId)
                            .col(SocialAppSites::SiteId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SocialAppSites::Table, SocialAppSites::SocialAppId)
                            .to(SocialApps::Table, SocialApps::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SocialAppSites::Table, SocialAppSites::SiteId)
                            .to(Sites::Table, Sites::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SocialAccounts::Table)
                    .col(pk_auto(SocialAccounts::Id))
                    .col(integer(SocialAccounts::UserId))
                    .col(string_len(SocialAccounts::Provider, 32))
                    .col(string_len(SocialAccounts::Uid, 191))
                    .col(json(SocialAccounts::ExtraData))
                    .col(timestamp_with_time_zone(SocialAccounts::DateJoined))
                    .col(timestamp_with_time_zone(SocialAccounts::LastLogin))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SocialAccounts::Table, SocialAccounts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_social_accounts_provider_uid")
                    .table(SocialAccounts::Table)
                    .col(SocialAccounts::Provider)
                    .col(SocialAccounts::Uid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_social_accounts_user_id")
                    .table(SocialAccounts::Table)
                    .col(SocialAccounts::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailAddresses::Table)
                    .col(pk_auto(EmailAddresses::Id))
                    .col(integer(EmailAddresses::UserId))
                    .col(string_uniq(EmailAddresses::Email))
                    .col(boolean(EmailAddresses::Verified))
                    .col(boolean(EmailAddresses::Primary))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailAddresses::Table, EmailAddresses::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_email_addresses_user_id")
                    .table(EmailAddresses::Table)
                    .col(EmailAddresses::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(pk_auto(SigningKeys::Id))
                    .col(string_uniq(SigningKeys::Kid))
                    .col(string(SigningKeys::Algorithm))
                    .col(text(SigningKeys::PrivateKey))
                    .col(string(SigningKeys::PublicKey))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SigningKeys::Table.into_iden(),
            EmailAddresses::Table.into_iden(),
            SocialAccounts::Table.into_iden(),
            SocialAppSites::Table.into_iden(),
            SocialApps::Table.into_iden(),
            Sites::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    FirstName,
    LastName,
    Password,
    IsActive,
    IsStaff,
    IsSuperuser,
    DateJoined,
    LastLogin,
}

#[derive(DeriveIden)]
enum Sites {
    Table,
    Id,
    Domain,
    Name,
}

#[derive(DeriveIden)]
enum SocialApps {
    Table,
    Id,
    Provider,
    Name,
    ClientId,
    Secret,
    AdminKey,
    AppIds,
    ClientKeys,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SocialAppSites {
    Table,
    SocialAppId,
    SiteId,
}

#[derive(DeriveIden)]
enum SocialAccounts {
    Table,
    Id,
    UserId,
    Provider,
    Uid,
    ExtraData,
    DateJoined,
    LastLogin,
}

#[derive(DeriveIden)]
enum EmailAddresses {
    Table,
    Id,
    UserId,
    Email,
    Verified,
    Primary,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Id,
    Kid,
    Algorithm,
    PrivateKey,
    PublicKey,
    CreatedAt,
    RetiredAt,
}
