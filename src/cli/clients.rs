//! `authbridge client add|list|remove`: resource servers allowed to introspect tokens.

use clap::Subcommand;
use secrecy::ExposeSecret;

use crate::{config::DatabaseSettings, resource_clients, store};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a resource server and print its secret (shown only this once).
    Add {
        /// The client id: 1-64 letters, digits, '.', '_' or '-'.
        client_id: String,
    },
    /// List resource servers (secrets are never printed: only their hashes are stored).
    List,
    /// Remove a resource server; its secret stops working at once.
    Remove { client_id: String },
}

pub async fn run(command: ClientCommand, settings: &DatabaseSettings) -> anyhow::Result<()> {
    let db = super::connect_migrated(settings).await?;
    match command {
        ClientCommand::Add { client_id } => {
            let secret = resource_clients::create(&db, &client_id).await?;
            println!("client_id:     {client_id}");
            println!("client_secret: {}", secret.expose_secret());
            eprintln!("Store the secret now: it cannot be shown again (`client remove` and `add` make a new one).");
        }
        ClientCommand::List => {
            println!("client_id\tcreated_at");
            for c in store::resource_clients::list(&db).await? {
                println!("{}\t{}", c.client_id, c.created_at.to_rfc3339());
            }
        }
        ClientCommand::Remove { client_id } => {
            anyhow::ensure!(
                store::resource_clients::delete(&db, &client_id).await?,
                "no client {client_id:?}"
            );
            println!("client {client_id} removed");
        }
    }
    Ok(())
}
