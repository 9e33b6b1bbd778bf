//! Names, phones and places in three locales, and interaction templates.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

const SURNAMES_CN: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "欧阳", "司马",
];
const GIVEN_CN: &[&str] = &[
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "秀兰", "霞", "小明", "志强", "嘉欣", "子轩", "浩然", "雨桐",
];
const SURNAMES_TW: &[&str] = &[
    "陳", "林", "黃", "張", "李", "王", "吳", "劉", "蔡", "楊", "許", "鄭", "謝", "郭", "洪", "曾",
];
const GIVEN_TW: &[&str] = &[
    "美玲", "志明", "淑芬", "家豪", "怡君", "建宏", "雅婷", "俊傑", "詩涵", "冠宇", "佩珊", "宗翰",
    "大文", "嘉玲",
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
    "Sophia",
    "Liam",
    "Ava",
    "Noah",
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
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "O'Brien",
    "Nguyen",
];
const REGIONS_CN: &[&str] = &["上海", "北京", "广州", "深圳", "杭州", "成都"];
const REGIONS_TW: &[&str] = &["台北", "台中", "高雄", "新竹"];
const REGIONS_EN: &[&str] = &[
    "London",
    "New York",
    "Toronto",
    "Sydney",
    "Singapore",
    "Manchester",
];

/// (channel, direction, kind, subject) of typical contacts.
pub(crate) const INTERACTIONS: &[(&str, &str, &str, &str)] = &[
    ("phone", "inbound", "inquiry", "Asked about opening hours"),
    ("email", "inbound", "inquiry", "Price of the large gift box"),
    (
        "chat",
        "inbound",
        "inquiry",
        "Is the new season's stock in?",
    ),
    ("phone", "outbound", "call", "Thank-you call"),
    (
        "email",
        "outbound",
        "message",
        "Welcome, and how to reach us",
    ),
    ("in_person", "inbound", "visit", "Visited the store"),
    ("email", "inbound", "complaint", "Parcel arrived late"),
    ("phone", "inbound", "complaint", "Wrong size delivered"),
    ("app", "inbound", "feedback", "Loves the loyalty app"),
    (
        "social",
        "inbound",
        "feedback",
        "Posted a photo of the order",
    ),
    ("sms", "outbound", "message", "Reminder: points expiring"),
];

/// A synthetic person.
pub struct Person {
    pub name: String,
    pub phone: String,
    pub locale: &'static str,
    pub region: &'static str,
}

fn one<'s>(rng: &mut ChaCha8Rng, items: &[&'s str]) -> &'s str {
    items
        .get(rng.random_range(0..items.len()))
        .copied()
        .unwrap_or("")
}

/// A person: 45 % simplified Chinese, 15 % traditional Chinese, 40 % English.
pub(crate) fn person(rng: &mut ChaCha8Rng) -> Person {
    let u: f64 = rng.random();
    if u < 0.45 {
        Person {
            name: format!("{}{}", one(rng, SURNAMES_CN), one(rng, GIVEN_CN)),
            phone: format!(
                "+86 13{} {:04} {:04}",
                rng.random_range(0..10),
                rng.random_range(0..10_000),
                rng.random_range(0..10_000)
            ),
            locale: "zh-CN",
            region: one(rng, REGIONS_CN),
        }
    } else if u < 0.60 {
        Person {
            name: format!("{}{}", one(rng, SURNAMES_TW), one(rng, GIVEN_TW)),
            phone: format!(
                "+886 9{:02} {:03} {:03}",
                rng.random_range(0..100),
                rng.random_range(0..1000),
                rng.random_range(0..1000)
            ),
            locale: "zh-TW",
            region: one(rng, REGIONS_TW),
        }
    } else {
        Person {
            name: format!("{} {}", one(rng, FIRST_EN), one(rng, LAST_EN)),
            phone: format!(
                "+44 7{:03} {:06}",
                rng.random_range(0..1000),
                rng.random_range(0..1_000_000)
            ),
            locale: "en",
            region: one(rng, REGIONS_EN),
        }
    }
}
