//! Loads synthetic customers fast, in large transactions, for benchmarks and a first look.

use anyhow::{Context, Result};
use tenure_domain::customer::CustomerData;
use tenure_store::Store;

const SURNAMES_ZH: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高",
];
const GIVEN_ZH: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "小明", "志强", "嘉欣", "子轩",
];
const FIRST_EN: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Susan",
    "Richard",
    "Jessica",
    "Joseph",
    "Sarah",
    "Thomas",
    "Karen",
    "Emma",
    "Oliver",
];
const LAST_EN: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
];

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same customers.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items
            .get((self.next() % items.len() as u64) as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// The `i`-th synthetic customer of a seed.
fn customer(r: &mut SplitMix, seed: u64, i: u64) -> CustomerData {
    let chinese = r.next().is_multiple_of(2);
    let name = if chinese {
        format!("{}{}", r.pick(SURNAMES_ZH), r.pick(GIVEN_ZH))
    } else {
        format!("{} {}", r.pick(FIRST_EN), r.pick(LAST_EN))
    };
    let mut d = CustomerData::named(name);
    d.external_id = Some(format!("S{seed}-{i:08}"));
    d.email = Some(format!("customer{i}.s{seed}@example.com"));
    d.phone = Some(format!("+86 13{:09}", r.next() % 1_000_000_000));
    d.locale = Some(if chinese { "zh-CN" } else { "en" }.to_owned());
    if r.next().is_multiple_of(5) {
        d.tags = vec!["vip".to_owned()];
    }
    d
}

pub async fn customers(store: &Store, count: u64, seed: u64) -> Result<()> {
    let mut rng = SplitMix(seed);
    let started = std::time::Instant::now();
    let mut done = 0;
    while done < count {
        let n = (count - done).min(50_000);
        let batch: Vec<CustomerData> = (done..done + n)
            .map(|i| customer(&mut rng, seed, i))
            .collect();
        store
            .insert_customers_bulk(&batch)
            .await
            .context("inserting customers")?;
        done += n;
        eprintln!(
            "{done} customers loaded ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64()
        );
    }
    store
        .analyze()
        .await
        .context("updating planner statistics")?;
    println!(
        "loaded {count} customers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
