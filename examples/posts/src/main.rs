//! `posts`: serves the example API with settings from `POSTS_*` environment variables.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .init();
    let settings = posts::config::Settings::from_env()?;
    let app = posts::app::App::build(settings).await?;
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
