//! `twin audit`: the audit log, newest first, either read from the file (`--data DIR` or
//! `--audit FILE`; works while the server runs) or asked of a running server (`--server
//! URL`, admin token).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use twin_proto::v1;
use twin_server::audit::{self, DEFAULT_PAGE, MAX_PAGE};

use crate::trust::{ClientArgs, audit_path};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The server's data folder (reads DIR/audit.redb).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["audit", "server"])]
    data: Option<PathBuf>,
    /// The audit log file.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    audit: Option<PathBuf>,
    /// A running server to ask (ListAudit; needs an admin token).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
    /// Entries to show (newest first).
    #[arg(long, default_value_t = DEFAULT_PAGE)]
    limit: usize,
    /// Show only entries older than this sequence number (paging).
    #[arg(long, value_name = "SEQ")]
    before: Option<u64>,
    /// One JSON object per line instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    anyhow::ensure!((1..=MAX_PAGE).contains(&args.limit), "--limit must be 1..{MAX_PAGE}");
    let page = match (&args.server, audit_path(args.data.as_ref(), args.audit.as_ref())) {
        (Some(url), _) => remote(&args, url)?,
        (None, Some(path)) => audit::page_response(&audit::read_page(&path, args.before, args.limit)?),
        (None, None) => anyhow::bail!("say where the log is: --data DIR, --audit FILE or --server URL"),
    };
    print(&page, args.json);
    Ok(ExitCode::SUCCESS)
}

fn remote(args: &AuditArgs, url: &str) -> Result<v1::ListAuditResponse> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut client = args.client.connect(url).await?;
        let request = v1::ListAuditRequest {
            page_size: args.limit as u32,
            page_token: args.before.map_or_else(String::new, |b| b.to_string()),
        };
        let page = client.list_audit(request).await.map_err(|s| {
            anyhow::anyhow!("ListAudit failed: {} ({})", s.message(), twin_server::gate::code_name(s.code()))
        })?;
        Ok(page.into_inner())
    })
}

/// `2026-01-02 03:04:05.678` (UTC) from milliseconds since the epoch.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn role_name(role: i32) -> &'static str {
    match v1::Role::try_from(role).unwrap_or(v1::Role::Unspecified) {
        v1::Role::Unspecified => "-",
        v1::Role::Viewer => "viewer",
        v1::Role::Operator => "operator",
        v1::Role::Planner => "planner",
        v1::Role::Admin => "admin",
    }
}

fn print(page: &v1::ListAuditResponse, json: bool) {
    if json {
        for e in &page.entries {
            let line = serde_json::json!({
                "seq": e.seq,
                "wall_time_unix_ms": e.wall_time_unix_ms,
                "sim_time_us": e.sim_time_us,
                "subject": e.subject,
                "role": role_name(e.role),
                "method": e.method,
                "request": e.request,
                "code": e.code,
                "message": e.message,
                "peer": e.peer,
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "{:>6}  {:<23}  {:>12}  {:<12} {:<8}  {:<16}  {:<18}  request / message",
        "seq", "wall time (UTC)", "sim time s", "subject", "role", "method", "result"
    );
    for e in &page.entries {
        let detail =
            if e.message.is_empty() { e.request.clone() } else { format!("{}  -- {}", e.request, e.message) };
        println!(
            "{:>6}  {:<23}  {:>12.1}  {:<12} {:<8}  {:<16}  {:<18}  {}",
            e.seq,
            utc(e.wall_time_unix_ms),
            e.sim_time_us as f64 / 1e6,
            e.subject,
            role_name(e.role),
            e.method,
            e.code,
            detail
        );
    }
    match page.next_page_token.as_str() {
        "" => println!("({} shown; {} kept in the log)", page.entries.len(), page.retained),
        next => println!("({} shown; {} kept; older: --before {next})", page.entries.len(), page.retained),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(super::utc(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(super::utc(1_767_323_045_678), "2026-01-02 03:04:05.678");
    }
}
