//! Bulk import from CSV (`registry import KIND FILE` and `POST /v1/imports/{kind}`): every bad row
//! reported with line and column, nothing imported unless --skip-invalid, GBK and BOM files, and
//! conservation of every imported lot.

mod common;

use common::ledger::{assert_conserved, dec, holding};
use common::{command, uscc, user, Api, Backend, Server};
use serde_json::Value;

const PARTIES_HEADER: &str = "kind,name_zh,name_en,uscc,id_number,region_code,address\n";
const LOTS_HEADER: &str = "right_type,sub_kind,vintage,compliance_year,valid_from,valid_to,region_code,origin,project,monitoring_period,quantity,holder_uscc,source_document\n";

fn write(srv: &Server, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = srv.db.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs `registry import`; returns (success, stdout + stderr).
fn import(srv: &Server, kind: &str, path: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let out = command(&srv.db)
        .arg("import")
        .arg(kind)
        .arg(path)
        .args(extra)
        .output()
        .expect("run registry import");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if kind != "lots" || !out.status.success() {
        return (out.status.success(), text);
    }
    // Lots issue quantity: the command line only proposes them, as the API does, and an operator
    // of another person loads them by uploading the same file.
    let id: i64 = text
        .split("proposed as proposal ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the command line proposes lots: {text}"));
    let op = common::operator(&srv.api(), common::OPERATOR);
    let before = items(&op, "/v1/lots").len();
    let checker = common::operator(&srv.api(), common::SECOND_OPERATOR);
    assert_eq!(
        items(&checker, "/v1/lots").len(),
        before,
        "loaded before approval"
    );
    let r = checker.raw(
        "POST",
        &format!("/v1/imports/lots?proposal={id}"),
        "text/csv",
        std::fs::read(path).unwrap(),
    );
    let report = format!(
        "{text}\nupload: {} imported, {} invalid\n{}",
        r.body["imported"], r.body["invalid"], r.body
    );
    (r.status.as_u16() == 200, report)
}

fn items(api: &Api, path: &str) -> Vec<Value> {
    api.get(path).expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Two enterprises, one per line after the header.
fn parties_csv() -> String {
    format!(
        "{PARTIES_HEADER}enterprise,顺昌县富源水泥有限公司,Fuyuan Cement,{},,350721,顺昌县埔上镇\nenterprise,南平市延平区绿源化工有限公司,,{},,350702,\n",
        uscc(101),
        uscc(102)
    )
}

fn lot_line(quantity: &str, holder: &str, source: &str) -> String {
    format!("EM,SO2,2026,,2026-01-01,2030-12-31,350721,paid_use,,,{quantity},{holder},{source}\n")
}

fn bad_rows_are_all_reported(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();

    // Parties: a wrong check character is reported with the expected one, and nothing is loaded.
    let mut wrong = uscc(103);
    let last = wrong.pop().unwrap();
    wrong.push(if last == '0' { '1' } else { '0' });
    let bad_parties = format!("{}enterprise,错误企业,,{wrong},,350702,\n", parties_csv());
    let path = write(&srv, "parties-bad.csv", bad_parties.as_bytes());
    let (ok, out) = import(&srv, "parties", &path, &[]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("line 4, column uscc: wrong check character"),
        "{out}"
    );
    assert!(items(&admin, "/v1/parties?kind=enterprise").is_empty());

    let path = write(&srv, "parties.csv", parties_csv().as_bytes());
    let (ok, out) = import(&srv, "parties", &path, &[]);
    assert!(ok, "{out}");
    assert_eq!(items(&admin, "/v1/parties?kind=enterprise").len(), 2);

    // Lots: three good rows and four bad ones; every bad one is listed, none is imported.
    let (a, c) = (uscc(101), uscc(102));
    let csv = [
        LOTS_HEADER.to_string(),
        lot_line("485.2", &a, "南环有偿〔2026〕15号"), // line 2: good
        lot_line("1.23456", &a, "南环有偿〔2026〕16号"), // line 3: 5 places
        lot_line("12", &uscc(999), "南环有偿〔2026〕17号"), // line 4: unknown holder
        lot_line("96.8", &c, "南环有偿〔2026〕18号"),  // line 5: good
        lot_line("10", &c, "南环有偿〔2026〕15号"),    // line 6: duplicate source (R2)
        "EM,PM25,2026,,2026-01-01,2030-12-31,350721,paid_use,,,5,".to_string()
            + &a
            + ",南环有偿〔2026〕19号\n", // line 7: unknown pollutant
        lot_line("30", &c, "南环有偿〔2026〕20号"),    // line 8: good
    ]
    .concat();
    let path = write(&srv, "lots.csv", csv.as_bytes());
    let (ok, out) = import(&srv, "lots", &path, &[]);
    assert!(!ok, "{out}");
    for needle in [
        "line 3, column quantity",
        "line 4, column holder_uscc",
        "line 6, column source_document",
        "line 7, column sub_kind",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    assert!(
        !out.contains("line 2,") && !out.contains("line 5,"),
        "{out}"
    );
    assert!(
        items(&admin, "/v1/lots").is_empty(),
        "nothing may be imported"
    );

    // --skip-invalid loads the three good rows; each lot conserves and sits in `available`.
    let (ok, out) = import(&srv, "lots", &path, &["--skip-invalid"]);
    assert!(ok, "{out}");
    assert!(out.contains("3 imported"), "{out}");
    let lots = items(&admin, "/v1/lots");
    assert_eq!(lots.len(), 3);
    for l in &lots {
        let id = l["id"].as_i64().unwrap();
        assert_conserved(&admin, id);
        let h = holding(&admin, l["first_holder_id"].as_i64().unwrap(), id);
        assert_eq!(dec(&h["available"]), dec(&l["issued"]));
    }
    // Importing again is refused row by row (R2): a retry never issues twice.
    let (ok, out) = import(&srv, "lots", &path, &["--skip-invalid"]);
    assert!(!ok, "{out}");
    assert_eq!(items(&admin, "/v1/lots").len(), 3);
    // The trail still verifies.
    let out = command(&srv.db).args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn gbk_and_bom_files(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    // GBK, as Chinese office software exports it.
    let text = parties_csv();
    let (gbk, _, lossy) = encoding_rs::GBK.encode(&text);
    assert!(!lossy);
    let path = write(&srv, "parties-gbk.csv", &gbk);
    let (ok, out) = import(&srv, "parties", &path, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("GBK"), "{out}");
    let names: Vec<String> = items(&admin, "/v1/parties?kind=enterprise")
        .iter()
        .map(|p| p["name_zh"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["顺昌县富源水泥有限公司", "南平市延平区绿源化工有限公司"]
    );

    // UTF-8 with a BOM: the first header is still `right_type`.
    let mut bom = "\u{feff}".to_string();
    bom.push_str(LOTS_HEADER);
    bom.push_str(&lot_line("485.2", &uscc(101), "南环有偿〔2026〕15号"));
    let path = write(&srv, "lots-bom.csv", bom.as_bytes());
    let (ok, out) = import(&srv, "lots", &path, &[]);
    assert!(ok, "{out}");
    let lots = items(&admin, "/v1/lots");
    assert_eq!(lots.len(), 1);
    assert_eq!(lots[0]["source_document"], "南环有偿〔2026〕15号");
    assert_conserved(&admin, lots[0]["id"].as_i64().unwrap());
}

fn bulk_endpoint(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank_party = common::party(&admin, "bank", 50);
    let bank = user(&admin, "bank", Some(bank_party), "banker");
    admin
        .raw(
            "POST",
            "/v1/imports/parties",
            "text/csv",
            parties_csv().into_bytes(),
        )
        .expect(200);
    let a = uscc(101);
    let csv = [
        LOTS_HEADER.to_string(),
        lot_line("485.2", &a, "南环有偿〔2026〕15号"),
        lot_line("-3", &a, "南环有偿〔2026〕16号"),
        lot_line("12", &a, "南环有偿〔2026〕17号"),
    ]
    .concat();
    // Only operators; only text/csv.
    bank.raw(
        "POST",
        "/v1/imports/lots",
        "text/csv",
        csv.clone().into_bytes(),
    )
    .expect(403);
    admin
        .raw(
            "POST",
            "/v1/imports/lots",
            "application/json",
            csv.clone().into_bytes(),
        )
        .expect(415);
    let r = admin
        .raw(
            "POST",
            "/v1/imports/lots",
            "text/csv",
            csv.clone().into_bytes(),
        )
        .expect(422);
    assert_eq!(r.code(), "import_invalid");
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        r.body
    );
    let bad = r.body["report"]["bad_rows"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{}", r.body);
    assert_eq!(
        (bad[0]["line"].as_u64(), bad[0]["column"].as_str()),
        (Some(3), Some("quantity"))
    );
    assert!(items(&admin, "/v1/lots").is_empty());

    // Lots are issued quantity: one operator proposes the file, another person approves it by
    // uploading the same file; only then is it loaded.
    let p = admin
        .raw(
            "POST",
            "/v1/imports/lots?skip_invalid=true",
            "text/csv",
            csv.clone().into_bytes(),
        )
        .expect(202);
    assert!(items(&admin, "/v1/lots").is_empty());
    let r = common::operator(&admin, common::SECOND_OPERATOR)
        .raw(
            "POST",
            &format!("/v1/imports/lots?proposal={}", p.body["id"]),
            "text/csv",
            csv.into_bytes(),
        )
        .expect(200);
    assert_eq!(
        (r.body["imported"].as_u64(), r.body["invalid"].as_u64()),
        (Some(2), Some(1))
    );
    for l in items(&admin, "/v1/lots") {
        assert_conserved(&admin, l["id"].as_i64().unwrap());
    }
    // A body beyond JSON's 1 MiB limit streams fine (1,400 parties with long addresses, ~1.2 MiB).
    let street = "南平市延平区滨江中路海峡资源环境交易中心南平分中心大楼".repeat(9);
    let mut big = PARTIES_HEADER.to_string();
    for n in 0..1_400u32 {
        big.push_str(&format!(
            "enterprise,南平市批量导入测试企业{n:05}有限公司,,{},,350702,{street}{n}室\n",
            uscc(10_000 + n)
        ));
    }
    assert!(big.len() > 1024 * 1024, "{}", big.len());
    let r = admin
        .raw("POST", "/v1/imports/parties", "text/csv", big.into_bytes())
        .expect(200);
    assert_eq!(r.body["imported"].as_u64(), Some(1_400));
}

both_backends!(bad_rows_are_all_reported, gbk_and_bom_files, bulk_endpoint);
