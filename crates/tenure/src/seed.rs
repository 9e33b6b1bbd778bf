//! Loads synthetic customers fast, in large transactions, for benchmarks and a first look.

use anyhow::{Context, Result};
use tenure_app::App;
use tenure_domain::changes::Actor;
use tenure_domain::customer::CustomerData;

/// The `i`-th synthetic customer of a seed: a generated person with predictable email and
/// external id, so benchmarks can ask for customers they know exist.
fn customer(seed: u64, i: u64) -> CustomerData {
    let person = tenure_generate::person(seed, i);
    let mut d = CustomerData::named(person.name);
    d.external_id = Some(format!("S{seed}-{i:08}"));
    d.email = Some(format!("customer{i}.s{seed}@example.com"));
    d.phone = Some(person.phone);
    d.locale = Some(person.locale.to_owned());
    d.region = Some(person.region.to_owned());
    if i.is_multiple_of(5) {
        d.tags = vec!["vip".to_owned()];
    }
    d
}

pub async fn customers(app: &App, me: &Actor, count: u64, seed: u64) -> Result<()> {
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(50_000);
        let batch: Vec<CustomerData> = (done..done + n).map(|i| customer(seed, i)).collect();
        app.load_customers(me, &batch)
            .await
            .context("inserting customers")?;
        done += n;
        eprintln!(
            "{done} customers loaded ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    app.analyze().await.context("updating planner statistics")?;
    // A bulk load queues the rebuild of the duplicate candidates; run it now rather than
    // leave it to the next worker.
    tenure_app::jobs::Worker::new(app.clone(), "seed")
        .run_kind(tenure_domain::jobs::JobKind::DuplicatesRebuild)
        .await
        .context("finding duplicates among the new customers")?;
    println!(
        "loaded {count} customers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
