//! The product catalogue: categories, products with list prices, and complementary pairs
//! that customers tend to buy together.

use std::io::Write;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::csv::Line;

const CATEGORIES: &[(&str, &[&str])] = &[
    (
        "Tea",
        &[
            "Longjing",
            "Tieguanyin",
            "Pu-erh",
            "Jasmine",
            "Oolong",
            "White peony",
            "Earl Grey",
            "Matcha",
        ],
    ),
    (
        "Teaware",
        &[
            "Gaiwan",
            "Clay teapot",
            "Tea tray",
            "Glass pitcher",
            "Cup set",
            "Strainer",
        ],
    ),
    (
        "Coffee",
        &[
            "Espresso beans",
            "Filter roast",
            "Decaf",
            "Cold brew pack",
            "Single origin",
        ],
    ),
    (
        "Coffee gear",
        &[
            "Hand grinder",
            "Pour-over kettle",
            "Dripper",
            "Paper filters",
            "Scale",
        ],
    ),
    (
        "Snacks",
        &[
            "Mooncake box",
            "Almond cookies",
            "Dried mango",
            "Pineapple cake",
            "Rice crackers",
        ],
    ),
    (
        "Gifts",
        &[
            "Gift box small",
            "Gift box large",
            "Greeting card",
            "Ribbon set",
        ],
    ),
    (
        "Skincare",
        &[
            "Face cream",
            "Sunscreen",
            "Cleanser",
            "Toner",
            "Sheet masks",
        ],
    ),
    (
        "Home",
        &["Candle", "Diffuser", "Linen napkins", "Ceramic vase"],
    ),
];

pub(crate) struct Product {
    pub external_id: String,
    pub name: String,
    pub category: usize,
    pub price_cents: i64,
    /// A product bought with this one more often than chance.
    pub complement: usize,
}

pub(crate) struct Catalog {
    products: Vec<Product>,
    by_category: Vec<Vec<usize>>,
}

impl Catalog {
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_CA7A_10C0_FFEE);
        let mut products = Vec::new();
        let mut by_category = Vec::new();
        for (c, (_, names)) in CATEGORIES.iter().enumerate() {
            let mut ids = Vec::new();
            for name in names.iter() {
                ids.push(products.len());
                products.push(Product {
                    external_id: format!("P{:04}", products.len() + 1),
                    name: (*name).to_owned(),
                    category: c,
                    price_cents: rng.random_range(5..120) * 100 - 1,
                    complement: 0,
                });
            }
            by_category.push(ids);
        }
        // Complements: tea with teaware, coffee with gear, snacks with gifts, and so on —
        // the next category over.
        for p in &mut products {
            let other = &by_category[(p.category + 1) % by_category.len()];
            p.complement = other[rng.random_range(0..other.len())];
        }
        Catalog {
            products,
            by_category,
        }
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn product(&self, i: usize) -> &Product {
        &self.products[i % self.products.len()]
    }

    /// A customer's two favourite categories.
    pub fn favourites(&self, rng: &mut ChaCha8Rng) -> [usize; 2] {
        let k = self.by_category.len();
        let a = rng.random_range(0..k);
        let b = (a + rng.random_range(1..k)) % k;
        [a, b]
    }

    /// The products of one order: 1–4 items, mostly from the favourite categories, often
    /// with the complement of the first.
    pub fn basket(&self, rng: &mut ChaCha8Rng, favourites: &[usize; 2]) -> Vec<usize> {
        let mut items: Vec<usize> = Vec::with_capacity(4);
        let n = 1
            + usize::from(rng.random_bool(0.45))
            + usize::from(rng.random_bool(0.2))
            + usize::from(rng.random_bool(0.1));
        for _ in 0..n {
            let category = if rng.random_bool(0.75) {
                favourites[usize::from(rng.random_bool(0.4))]
            } else {
                rng.random_range(0..self.by_category.len())
            };
            let ids = &self.by_category[category];
            let p = ids[rng.random_range(0..ids.len())];
            if !items.contains(&p) {
                items.push(p);
            }
        }
        if let Some(&first) = items.first() {
            let complement = self.products[first].complement;
            if rng.random_bool(0.35) && !items.contains(&complement) {
                items.push(complement);
            }
        }
        items
    }

    pub fn write_csv(&self, w: &mut impl Write, currency: &str) -> std::io::Result<()> {
        w.write_all(b"external_id,name,category,price,currency\n")?;
        let mut buf = Vec::new();
        for p in &self.products {
            let mut line = Line::new(&mut buf);
            line.field(&p.external_id);
            line.field(&p.name);
            line.field(CATEGORIES[p.category].0);
            line.money(p.price_cents);
            line.field(currency);
            line.end();
        }
        w.write_all(&buf)
    }
}
