#!/usr/bin/env python3
"""Generates a lots CSV for the bulk-import measurement, and the parties CSV its holders need.

    python3 bench/gen_lots.py 1000000 target/bench   # writes parties.csv and lots.csv there
    registry import parties target/bench/parties.csv
    /usr/bin/time -v registry import lots target/bench/lots.csv

Credit codes get R1's check character; every source document is unique (R2).
"""
import csv
import os
import random
import sys

SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
W = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
COUNTIES = ["350702", "350703", "350721", "350722", "350723", "350724", "350725", "350781", "350782", "350783"]


def uscc(first17):
    s = sum(SET.index(c) * w for c, w in zip(first17, W))
    return first17 + SET[(31 - s % 31) % 31]


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = sys.argv[2] if len(sys.argv) > 2 else "target/bench"
    holders = int(os.environ.get("HOLDERS", "500"))
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(2026)
    codes = []
    with open(os.path.join(out, "parties.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["kind", "name_zh", "name_en", "uscc", "id_number", "region_code", "address"])
        for i in range(holders):
            county = COUNTIES[i % len(COUNTIES)]
            code = uscc(f"91{county}BM{i:07d}")
            codes.append((code, county))
            w.writerow(["enterprise", f"南平测试企业{i:04d}有限公司", "", code, "", county, ""])
    pollutants = ["COD", "NH3N", "SO2", "NOX"]
    with open(os.path.join(out, "lots.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["right_type", "sub_kind", "vintage", "compliance_year", "valid_from", "valid_to", "region_code",
                    "origin", "project", "monitoring_period", "quantity", "holder_uscc", "source_document"])
        for i in range(rows):
            code, county = codes[rnd.randrange(len(codes))]
            kind = rnd.random()
            qty = f"{rnd.randint(1, 99999) / 10:.1f}"
            if kind < 0.85:
                w.writerow(["EM", pollutants[i % 4], 2026, "", "2026-01-01", "2030-12-31", county,
                            "paid_use" if i % 3 else "initial_allocation", "", "", qty, code,
                            f"南环有偿〔2026〕B{i:07d}号"])
            elif kind < 0.95:
                w.writerow(["EU", "", 2026, "", "2026-01-01", "2027-12-31", county, "initial_allocation", "", "",
                            qty, code, f"闽发改用能〔2026〕B{i:07d}号"])
            else:
                w.writerow(["CA", "", 2026, 2026, "2026-01-01", "2027-12-31", county, "initial_allocation", "", "",
                            str(rnd.randint(100, 500000)), code, f"闽环配额〔2026〕B{i:07d}号"])


if __name__ == "__main__":
    main()
