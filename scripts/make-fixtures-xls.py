#!/usr/bin/env python3
"""Writes an Excel 97-2003 (.xls, BIFF8) fixture from the JSON spec that
`cargo run -p anna-shared --example make_fixtures -- ROOT SPEC` writes.

Usage: make-fixtures-xls.py SPEC.json OUT.xls  (needs xlwt; scripts/make-fixtures runs it)

The spec is {"sheet": name, "rows": [[cell, ...], ...]} where a cell is null or
{"t": "s"|"n"|"d"|"t", "v": text | number | [y, m, d] | [h, m]}; an empty row is [].
"""
import datetime
import json
import sys

import xlwt


def main() -> None:
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet(spec["sheet"])
    header = xlwt.easyxf("font: bold on")
    date = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    time = xlwt.easyxf(num_format_str="HH:MM")
    whole = xlwt.easyxf(num_format_str="0")

    for r, row in enumerate(spec["rows"]):
        for c, cell in enumerate(row):
            if cell is None:
                continue
            kind, value = cell["t"], cell["v"]
            if kind == "s":
                if r == 0:
                    sheet.write(r, c, value, header)
                else:
                    sheet.write(r, c, value)
            elif kind == "n":
                sheet.write(r, c, float(value), whole)
            elif kind == "d":
                sheet.write(r, c, datetime.date(*value), date)
            elif kind == "t":
                sheet.write(r, c, datetime.time(*value), time)
            else:
                raise ValueError(f"unknown cell kind {kind!r}")
    for c in range(max((len(row) for row in spec["rows"]), default=0)):
        sheet.col(c).width = 24 * 256

    book.save(out_path)


if __name__ == "__main__":
    main()
