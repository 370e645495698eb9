//! `ssf-transmitter contain`: submits a bulk job to a running service over its HTTP API and
//! follows it to the end — a progress bar on a terminal, plain progress lines otherwise. Needs
//! only the server's URL and an API token with `enforce:write` and `enforce:read`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// What `contain` was asked to do.
#[derive(Debug, Clone)]
pub struct ContainJob {
    /// The service, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// A bearer token.
    pub token: String,
    /// One user identifier per line (blank lines and `#` comments skipped).
    pub users_file: std::path::PathBuf,
    /// Comma-separated steps: `suspend,clear_sessions,add_to_group=Restricted Users,signal=high`.
    pub steps: String,
    /// Why.
    pub reason: Option<String>,
}

/// How the job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every user done.
    AllDone,
    /// Some users failed (listed on stderr), or the job was cancelled.
    NotAll,
}

/// Parses the `--steps` list into the API's step objects.
pub fn parse_steps(list: &str) -> anyhow::Result<Vec<Value>> {
    let mut steps = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let step = match raw.split_once('=') {
            Some(("add_to_group", group)) => json!({"action": "add_to_group", "group": group}),
            Some(("signal", level)) => json!({"action": "signal", "level": level}),
            Some((name, _)) => bail!(
                "--steps: {name} takes no value (only add_to_group=GROUP and signal=LEVEL do)"
            ),
            None => match raw {
                "clear_sessions" | "suspend" | "deactivate" | "reset_factors"
                | "expire_password" | "reset_password" => json!({"action": raw}),
                "add_to_group" | "signal" => {
                    bail!("--steps: {raw} needs a value: add_to_group=GROUP, signal=LEVEL")
                }
                other => bail!(
                    "--steps: unknown step {other}; use clear_sessions, suspend, deactivate, reset_factors, expire_password, reset_password, add_to_group=GROUP, signal=LEVEL"
                ),
            },
        };
        steps.push(step);
    }
    if steps.is_empty() {
        bail!("--steps lists no step");
    }
    Ok(steps)
}

/// Reads the users file: one identifier per line.
pub fn read_users(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the users file {}", path.display()))?;
    let users: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if users.is_empty() {
        bail!("{} lists no user (one identifier per line)", path.display());
    }
    Ok(users)
}

fn problem(status: reqwest::StatusCode, body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let mut text = format!(
                "{status}: {}",
                v["detail"].as_str().or(v["title"].as_str()).unwrap_or(body)
            );
            if let Some(errors) = v["errors"].as_array() {
                for e in errors {
                    text.push_str(&format!(
                        "\n  {}: {}",
                        e["field"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("?")
                    ));
                }
            }
            text
        }
        Err(_) => format!("{status}: {body}"),
    }
}

/// Submits the job and follows it until it ends (Ctrl-C cancels it).
pub async fn run(job: ContainJob) -> anyhow::Result<Ended> {
    let steps = parse_steps(&job.steps)?;
    let users = read_users(&job.users_file)?;
    let server = job.server.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")?;
    let mut body = json!({"steps": steps, "users": users});
    if let Some(r) = &job.reason {
        body["reason"] = json!(r);
    }
    // A retried submission (e.g. after a timeout) must not start a second job.
    let key = uuid::Uuid::new_v4().to_string();
    let resp = http
        .post(format!("{server}/v1/jobs"))
        .bearer_auth(&job.token)
        .header("idempotency-key", &key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status != reqwest::StatusCode::ACCEPTED {
        bail!("the job was refused: {}", problem(status, &text));
    }
    let accepted: Value = serde_json::from_str(&text).context("unexpected answer")?;
    let id = accepted["id"]
        .as_str()
        .context("no job id in the answer")?
        .to_owned();
    let total = accepted["total"].as_u64().unwrap_or(users.len() as u64);
    eprintln!("job {id}: {total} users");

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} users ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut last_line = std::time::Instant::now();
    let mut last_seen = (u64::MAX, u64::MAX);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let end_status = loop {
        let resp = http
            .get(format!("{server}/v1/jobs/{id}?results=false"))
            .bearer_auth(&job.token)
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                let done = v["done"].as_u64().unwrap_or(0);
                let failed = v["failed"].as_u64().unwrap_or(0);
                match &bar {
                    Some(bar) => {
                        bar.set_position(done + failed);
                        bar.set_message(format!("{failed} failed"));
                    }
                    None => {
                        if (done, failed) != last_seen
                            && (last_line.elapsed() >= Duration::from_secs(2)
                                || v["status"] != "running")
                        {
                            eprintln!(
                                "job {id}: {}/{total} users, {done} done, {failed} failed",
                                done + failed
                            );
                            last_line = std::time::Instant::now();
                            last_seen = (done, failed);
                        }
                    }
                }
                if v["status"] != "running" {
                    break v["status"].as_str().unwrap_or_default().to_owned();
                }
            }
            Ok(r) => {
                let s = r.status();
                let t = r.text().await.unwrap_or_default();
                bail!("cannot follow job {id}: {}", problem(s, &t));
            }
            Err(e) => eprintln!("job {id}: cannot reach {server} ({e}); trying again"),
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                let r = http
                    .post(format!("{server}/v1/jobs/{id}/cancel"))
                    .bearer_auth(&job.token)
                    .send()
                    .await;
                if let Some(bar) = &bar {
                    bar.abandon_with_message("cancelled");
                }
                match r {
                    Ok(r) if r.status().is_success() => bail!("job {id} cancelled"),
                    _ => bail!("interrupted; job {id} may still be running (POST /v1/jobs/{id}/cancel)"),
                }
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    };
    if let Some(bar) = &bar {
        bar.finish_with_message(end_status.clone());
        // The bar stays on its line; the summary starts on the next.
        eprintln!();
    }
    let full: Value = http
        .get(format!("{server}/v1/jobs/{id}"))
        .bearer_auth(&job.token)
        .send()
        .await
        .context("cannot read the job's results")?
        .json()
        .await
        .context("unexpected answer")?;
    let done = full["done"].as_u64().unwrap_or(0);
    let failed: Vec<&Value> = full["results"]
        .as_array()
        .map(|r| r.iter().filter(|r| r["status"] != "done").collect())
        .unwrap_or_default();
    println!(
        "job {id} {end_status}: {done} of {total} users done, {} not",
        failed.len()
    );
    for r in failed.iter().take(50) {
        println!(
            "  {}: {}{}",
            r["user"].as_str().unwrap_or("?"),
            r["status"].as_str().unwrap_or("?"),
            r["error"]
                .as_str()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    if failed.len() > 50 {
        println!(
            "  … and {} more: GET {server}/v1/jobs/{id}",
            failed.len() - 50
        );
    }
    Ok(if end_status == "done" && failed.is_empty() {
        Ended::AllDone
    } else {
        Ended::NotAll
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_into_api_steps() {
        let s = parse_steps("suspend, clear_sessions,add_to_group=Restricted Users,signal=high")
            .expect("steps");
        assert_eq!(
            s,
            vec![
                json!({"action": "suspend"}),
                json!({"action": "clear_sessions"}),
                json!({"action": "add_to_group", "group": "Restricted Users"}),
                json!({"action": "signal", "level": "high"}),
            ]
        );
        for bad in ["", "explode", "add_to_group", "suspend=1", " , "] {
            assert!(parse_steps(bad).is_err(), "{bad}");
        }
    }
}
