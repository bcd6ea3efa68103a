//! `tiaki serve`: the portal, its mail sender, and graceful shutdown.

use anyhow::{Context, Result};
use app::Config;
use app::config::LogFormat;
use app::notify::{Sender, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("TIAKI_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Incident notice campaigns: what an incident lead releases goes out from every node too.
fn campaigns(app: &Arc<app::App>, config: &Config) -> (Arc<Notify>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(Notify::new());
    let task = tokio::spawn(app.clone().run_campaigns(
        app::incidents::Sender::from_config(config),
        config.mail_from.clone(),
        config.data_dir.join("campaigns"),
        stop.clone(),
    ));
    (stop, task)
}

pub(crate) async fn run(config: Config) -> Result<()> {
    init_logging(config.log_format);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot start the metrics recorder")?;
    let app = crate::open(&config).await?;
    crate::seal_old_details(&app).await?;
    // The canaries (honeytokens): planted by the first node to start, loaded by every node.
    app.plant_honeytokens().await.map_err(|e| anyhow::anyhow!("planting the honeytokens: {e}"))?;

    let transport = Transport::from_config(&config).map_err(anyhow::Error::msg)?;
    if let Transport::Folder(dir) = &transport {
        eprintln!("No SMTP server is configured (TIAKI_SMTP_URL): mail is written as .eml files to {}", dir.display());
    }
    let sender = Sender::new(app.clone(), transport, &config.mail_from).map_err(anyhow::Error::msg)?;
    let stop_mail = Arc::new(Notify::new());
    let mail_task = tokio::spawn(sender.run(stop_mail.clone()));
    let stop_audit = Arc::new(Notify::new());
    let audit_task = tokio::spawn(app.clone().run_audit_jobs(stop_audit.clone()));
    // Background work (the blob sweep, pruning old sign-in state and access-log events past
    // their retention) runs from the job queue, which every node shares.
    let stop_jobs = Arc::new(Notify::new());
    let jobs_task = tokio::spawn(app.clone().run_jobs(stop_jobs.clone()));
    let (stop_campaigns, campaigns_task) = campaigns(&app, &config);

    if config.public_url.starts_with("https://") && config.tls.is_none() && config.trusted_proxies.is_empty() {
        // Review #25: behind a TLS-terminating proxy that is not trusted, every visitor shares
        // the proxy's address, and so its sign-in limits.
        eprintln!(
            "Warning: TIAKI_PUBLIC_URL is https but this server speaks plain HTTP and trusts no proxy. If a proxy \
             terminates TLS in front of it, set TIAKI_TRUSTED_PROXIES to the proxy's address: otherwise every visitor \
             appears to come from the proxy and shares its sign-in limits."
        );
    }
    match app.console().first_start().await? {
        app::console::FirstStart::NewLink(code) => {
            eprintln!("\nWelcome to Tiaki. No operator has been set up yet.");
            eprintln!(
                "To create the first operator account, open {}/activate and type this one-time code (it expires in {} \
                 days; it is printed",
                config.public_url,
                config.invitation_secs / 86_400
            );
            eprintln!("only now — if it is lost, `tiaki admin first-operator-link` makes a new one):\n\n    {code}\n");
        }
        app::console::FirstStart::LinkStillWorks(until) => {
            let until = time::OffsetDateTime::from_unix_timestamp(until)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
                .unwrap_or_default();
            eprintln!(
                "No operator has been set up yet. The code printed at the first start works until {until} (UTC); if it \
                 is lost, run `tiaki admin first-operator-link` for a new one (the old one then stops working)."
            );
        }
        app::console::FirstStart::Done => {}
    }

    let state = web::WebState {
        app: app.clone(),
        secure: config.secure_cookies(),
        trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        data_dir: config.data_dir.clone(),
        metrics: Some(metrics),
        metrics_token: config.metrics_token.clone().map(Arc::new),
    };
    let router = web::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let addr = config.listen;

    if let Some(tls) = &config.tls {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let rustls =
            axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.with_context(|| {
                format!("cannot load TLS certificate {} and key {}", tls.cert.display(), tls.key.display())
            })?;
        let handle = axum_server::Handle::new();
        let h = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            h.graceful_shutdown(Some(Duration::from_secs(20)));
        });
        eprintln!("Tiaki is listening on https://{addr} (public address {})", config.public_url);
        tracing::info!(%addr, tls = true, backend = ?app.backend(), "listening");
        axum_server::bind_rustls(addr, rustls)
            .handle(handle)
            .serve(router)
            .await
            .with_context(|| format!("cannot serve on {addr}"))?;
    } else {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr}; is another program using it? Set TIAKI_LISTEN to another address")
        })?;
        eprintln!("Tiaki is listening on http://{} (public address {})", listener.local_addr()?, config.public_url);
        tracing::info!(%addr, tls = false, backend = ?app.backend(), "listening");
        axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await.context("server failed")?;
    }
    stop_mail.notify_one();
    stop_audit.notify_one();
    stop_jobs.notify_one();
    stop_campaigns.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(10), mail_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), audit_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), jobs_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), campaigns_task).await;
    tracing::info!("stopped");
    Ok(())
}
