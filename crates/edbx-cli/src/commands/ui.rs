//! `edbx ui`: serves the web UI (crate `edbx-ui`) for the server the connection settings name.

use std::time::Duration;

use crate::cli::UiArgs;
use crate::commands::Ctx;
use crate::exit::{Exit, Failure, Outcome};

pub async fn ui(args: &UiArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    // Connect first: a wrong address or token fails here, before anything listens.
    let client = ctx.client().await?;
    let options = edbx_ui::Options::default()
        .listen(args.listen)
        .allow_writes(args.allow_writes)
        .poll_interval(Duration::from_millis(args.poll_interval));
    let ui = edbx_ui::Ui::bind(client, options)
        .await
        .map_err(|e| Failure::usage(e.to_string()))?;
    eprintln!(
        "edbx ui: serving {} (tenant {}), {}, on http://{}/ — open the link below; it logs one \
         browser in, once. Ctrl-C stops.",
        ctx.settings.address(),
        ctx.settings
            .config
            .get_tenant_id()
            .unwrap_or("server default"),
        if args.allow_writes {
            "writes allowed (--allow-writes)"
        } else {
            "read-only"
        },
        ui.local_addr(),
    );
    // The link alone on stdout, for scripts (it holds the UI's login token, not EventDBX's).
    ctx.out.line(ui.login_url())?;
    ctx.out.flush()?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    ui.serve(stop)
        .await
        .map_err(|e| Failure::new(Exit::Connection, format!("the UI stopped serving: {e}")))?;
    // Ctrl-C is how it ends, and it exits 130 as every interrupted command does.
    Err(Failure::new(Exit::Interrupted, String::new()))
}
