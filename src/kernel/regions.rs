//! Administrative division codes (GB/T 2260) of Fujian: which region codes exist.
//!
//! The registry serves Fujian, so every region code it records for a lot, a forest parcel, a
//! benchmark price, a non-attainment flag or a buyer restriction must name a division of Fujian
//! that exists: the province (`350000`), one of its nine prefecture-level cities (`3501xx`..`3509xx`
//! written as the aggregate `350100`..`350900`), or one of their counties, county-level cities and
//! districts. A code such as `350799` has the right shape and the right province prefix but names
//! nothing, and a lot recorded there would fall outside every county's market and benchmark.
//!
//! Source: 中华人民共和国民政部《2023年中华人民共和国县以上行政区划代码》 (Ministry of Civil
//! Affairs, county-level and above administrative division codes as of 31 December 2023), which
//! keeps GB/T 2260-2007 up to date. Changes since the 2007 edition that it includes: 长乐市 →
//! 长乐区 350112 (2017); 建阳市 → 建阳区 350703 and 永定县 → 永定区 350803 (2014); 梅列区 and 三元区
//! merged into 三元区 350404, 沙县 → 沙县区 350405, 龙海市 → 龙海区 350604, 长泰县 → 长泰区 350605
//! (2021). Abolished codes (350182, 350402, 350403, 350427, 350625, 350681, 350784, 350822) are
//! not valid for new records.
//!
//! Parties may be registered outside Fujian (a buyer, a bank's head office): for them only the
//! province-level code of another province is accepted, as the registry keeps no table of other
//! provinces' divisions ([`party_region_exists`]).

/// Every division of Fujian, with its name: the province, the nine prefecture-level cities (as
/// aggregates ending in `00`), then each city's districts, counties and county-level cities.
pub const FUJIAN: &[(&str, &str)] = &[
    ("350000", "福建省"),
    // 福州市
    ("350100", "福州市"),
    ("350102", "鼓楼区"),
    ("350103", "台江区"),
    ("350104", "仓山区"),
    ("350105", "马尾区"),
    ("350111", "晋安区"),
    ("350112", "长乐区"),
    ("350121", "闽侯县"),
    ("350122", "连江县"),
    ("350123", "罗源县"),
    ("350124", "闽清县"),
    ("350125", "永泰县"),
    ("350128", "平潭县"),
    ("350181", "福清市"),
    // 厦门市
    ("350200", "厦门市"),
    ("350203", "思明区"),
    ("350205", "海沧区"),
    ("350206", "湖里区"),
    ("350211", "集美区"),
    ("350212", "同安区"),
    ("350213", "翔安区"),
    // 莆田市
    ("350300", "莆田市"),
    ("350302", "城厢区"),
    ("350303", "涵江区"),
    ("350304", "荔城区"),
    ("350305", "秀屿区"),
    ("350322", "仙游县"),
    // 三明市
    ("350400", "三明市"),
    ("350404", "三元区"),
    ("350405", "沙县区"),
    ("350421", "明溪县"),
    ("350423", "清流县"),
    ("350424", "宁化县"),
    ("350425", "大田县"),
    ("350426", "尤溪县"),
    ("350428", "将乐县"),
    ("350429", "泰宁县"),
    ("350430", "建宁县"),
    ("350481", "永安市"),
    // 泉州市
    ("350500", "泉州市"),
    ("350502", "鲤城区"),
    ("350503", "丰泽区"),
    ("350504", "洛江区"),
    ("350505", "泉港区"),
    ("350521", "惠安县"),
    ("350524", "安溪县"),
    ("350525", "永春县"),
    ("350526", "德化县"),
    ("350527", "金门县"),
    ("350581", "石狮市"),
    ("350582", "晋江市"),
    ("350583", "南安市"),
    // 漳州市
    ("350600", "漳州市"),
    ("350602", "芗城区"),
    ("350603", "龙文区"),
    ("350604", "龙海区"),
    ("350605", "长泰区"),
    ("350622", "云霄县"),
    ("350623", "漳浦县"),
    ("350624", "诏安县"),
    ("350626", "东山县"),
    ("350627", "南靖县"),
    ("350628", "平和县"),
    ("350629", "华安县"),
    // 南平市
    ("350700", "南平市"),
    ("350702", "延平区"),
    ("350703", "建阳区"),
    ("350721", "顺昌县"),
    ("350722", "浦城县"),
    ("350723", "光泽县"),
    ("350724", "松溪县"),
    ("350725", "政和县"),
    ("350781", "邵武市"),
    ("350782", "武夷山市"),
    ("350783", "建瓯市"),
    // 龙岩市
    ("350800", "龙岩市"),
    ("350802", "新罗区"),
    ("350803", "永定区"),
    ("350821", "长汀县"),
    ("350823", "上杭县"),
    ("350824", "武平县"),
    ("350825", "连城县"),
    ("350881", "漳平市"),
    // 宁德市
    ("350900", "宁德市"),
    ("350902", "蕉城区"),
    ("350921", "霞浦县"),
    ("350922", "古田县"),
    ("350923", "屏南县"),
    ("350924", "寿宁县"),
    ("350925", "周宁县"),
    ("350926", "柘荣县"),
    ("350981", "福安市"),
    ("350982", "福鼎市"),
];

/// Province-level prefixes of GB/T 2260 (the first two digits), for parties outside Fujian.
const PROVINCES: &[&str] = &[
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

/// The name of a division of Fujian, or `None` when the code names none.
pub fn fujian_name(code: &str) -> Option<&'static str> {
    FUJIAN.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// A division of Fujian that exists: the province, a prefecture-level city, or a county-level
/// division.
pub fn fujian_exists(code: &str) -> bool {
    fujian_name(code).is_some()
}

/// A county-level division of Fujian (a district, county or county-level city), not an aggregate.
pub fn fujian_county(code: &str) -> bool {
    fujian_exists(code) && !code.ends_with("00")
}

/// A party's region: a division of Fujian, or the province-level code of another province.
pub fn party_region_exists(code: &str) -> bool {
    fujian_exists(code)
        || (code.len() == 6
            && code.is_ascii()
            && code.ends_with("0000")
            && PROVINCES.contains(&code.get(..2).unwrap_or("")))
}

/// Why a region code is refused, for a 422: says what the code must be.
pub fn refusal(code: &str) -> String {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        format!("{code} is not an administrative division of Fujian (GB/T 2260)")
    } else {
        "a 6-digit administrative division code of Fujian (GB/T 2260)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for (code, name) in FUJIAN {
            assert_eq!(code.len(), 6, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
            assert!(code.starts_with("35"), "{code}");
            assert!(seen.insert(*code), "{code} twice");
            assert!(!name.is_empty());
            // Every county's prefecture is in the table.
            let prefecture = format!("{}00", code.chars().take(4).collect::<String>());
            assert!(fujian_exists(&prefecture), "{code} without {prefecture}");
        }
        // 1 province, 9 prefecture-level cities, 84 county-level divisions.
        assert_eq!(FUJIAN.len(), 94);
        let prefectures = FUJIAN
            .iter()
            .filter(|(c, _)| c.ends_with("00") && *c != "350000")
            .count();
        assert_eq!(prefectures, 9);
    }

    #[test]
    fn nanping() {
        assert_eq!(fujian_name("350700"), Some("南平市"));
        assert_eq!(fujian_name("350702"), Some("延平区"));
        assert_eq!(fujian_name("350721"), Some("顺昌县"));
        assert_eq!(fujian_name("350783"), Some("建瓯市"));
        assert!(fujian_county("350781"));
        assert!(!fujian_county("350700"));
        assert!(fujian_exists("350000"));
        // A shape that is right and a place that is not.
        for bad in [
            "350799", "350710", "351000", "350784", "350402", "350001", "3507", "南平",
        ] {
            assert!(!fujian_exists(bad), "{bad}");
        }
    }

    #[test]
    fn parties_outside_fujian() {
        assert!(party_region_exists("110000"));
        assert!(party_region_exists("820000"));
        assert!(party_region_exists("350702"));
        for bad in [
            "110101",
            "160000",
            "100000",
            "350799",
            "南平南",
            "",
            "11000",
        ] {
            assert!(!party_region_exists(bad), "{bad}");
        }
    }

    #[test]
    fn refusals_say_why() {
        assert!(refusal("350799").contains("350799 is not"));
        assert!(refusal("南平").starts_with("a 6-digit"));
    }
}
