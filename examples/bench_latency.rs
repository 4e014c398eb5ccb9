//! Idle end-to-end latency: posts one webhook at a time and waits until the CleverTap simulator
//! has accepted its record (polling `/_sim/stats`); prints one JSON line with p50/p99.
//!
//! `cargo run --release --example bench_latency -- RELAY_URL SIM_URL TOKEN COUNT TAG`

use std::time::{Duration, Instant};

use serde_json::Value;

/// The benchmark's Simple-mode contact (same shape as bench/webhook.lua), padded to 615 bytes.
fn contact(tag: &str, i: u64) -> String {
    let body = |pad: &str| {
        let updated =
            chrono::DateTime::from_timestamp(1_795_000_000 + i64::try_from(i).unwrap_or(0), 0)
                .unwrap_or_default()
                .format("%d-%m-%Y %H:%M:%S");
        format!(
            r#"{{"contact_id":199{i:09},"contact_first_name":"Amelia","contact_last_name":"Hart","contact_email":"bench.{tag}.99.{i:09}@example.com","contact_mobile_number":"+44 7700 900123","contact_work_number":"+44 20 7946 0958","contact_job_title":"Head of Growth","contact_lead_score":42,"contact_lead_source_name":"Web Form","contact_lifecycle_stage_name":"Lead","contact_sales_account_name":"Hart and Co","contact_city":"London","contact_country":"United Kingdom","contact_cf_plan":"Pro","contact_created_at":"26-11-2026 09:14:33","contact_updated_at":"{updated}","contact_cf_notes":"{pad}"}}"#
        )
    };
    let pad = "x".repeat(615usize.saturating_sub(body("").len()));
    body(&pad)
}

async fn accepted(client: &reqwest::Client, sim: &str) -> Result<u64, reqwest::Error> {
    let stats: Value = client
        .get(format!("{sim}/_sim/stats"))
        .send()
        .await?
        .json()
        .await?;
    Ok(stats["records_accepted"].as_u64().unwrap_or(0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [relay, sim, token, count, tag] = args.as_slice() else {
        return Err("usage: bench_latency RELAY_URL SIM_URL TOKEN COUNT TAG".into());
    };
    let count: u64 = count.parse()?;
    let client = reqwest::Client::new();
    let (mut e2e, mut answer) = (Vec::new(), Vec::new());
    for i in 0..count {
        let before = accepted(&client, sim).await?;
        let body = contact(tag, i);
        let started = Instant::now();
        let response = client
            .post(format!("{relay}/webhooks/contacts"))
            .header("X-Freshtap-Token", token.as_str())
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        answer.push(started.elapsed().as_secs_f64() * 1000.0);
        if response.status().as_u16() != 202 {
            return Err(format!("webhook {i} answered {}", response.status()).into());
        }
        loop {
            if accepted(&client, sim).await? > before {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(format!("webhook {i} not delivered within 10 s").into());
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        e2e.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    e2e.sort_by(f64::total_cmp);
    answer.sort_by(f64::total_cmp);
    println!(
        r#"{{"count":{count},"bytes":{},"e2e_p50_ms":{:.3},"e2e_p99_ms":{:.3},"e2e_max_ms":{:.3},"answer_p50_ms":{:.3},"answer_p99_ms":{:.3}}}"#,
        contact(tag, 0).len(),
        percentile(&e2e, 50.0),
        percentile(&e2e, 99.0),
        e2e[e2e.len() - 1],
        percentile(&answer, 50.0),
        percentile(&answer, 99.0)
    );
    Ok(())
}
