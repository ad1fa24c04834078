"""The record schema in one place: every results.csv column is documented, every record key the runner
writes is a known field or a declared metric column, and schema-1 records read as what they were."""

import re

from ganbench.store.records import COST_AND_PROVENANCE_COLUMNS, IDENTITY_COLUMNS, SCHEMA_VERSION, result_columns
from ganbench.store.runs import upgrade


def test_every_results_column_is_documented(root):
    doc = (root / "docs" / "results-schema.md").read_text()
    assert f"# Results schema (schema_version {SCHEMA_VERSION})" in doc
    table = doc.split("## `results.csv` columns", 1)[1].split("## Cell records", 1)[0]
    documented = {name for line in table.splitlines() if line.startswith("| `")
                  for name in re.findall(r"`([a-z0-9_]+)`", line.split(" | ")[0])}  # fmt: skip
    columns = {*IDENTITY_COLUMNS, *COST_AND_PROVENANCE_COLUMNS, "fid", "kid", "kid_subset_size"}
    assert columns <= documented, columns - documented


def test_a_schema_1_record_reads_with_the_metric_columns_it_had():
    old = {"schema_version": 1, "cell_id": "a", "fid": 10.0, "kid": 0.1, "kid_subset_size": 5,
           "spec": {"metrics": ["fid", "kid:max_subset_size=1000,subsets=100"]}}  # fmt: skip
    new = upgrade(old)
    assert [(c["name"], c["lower_is_better"]) for c in new["metric_columns"]] == [
        ("fid", True),
        ("kid", True),
        ("kid_subset_size", None),
    ]
    assert result_columns([new])[10:13] == ["fid", "kid", "kid_subset_size"]
    only_fid = upgrade({**old, "spec": {"metrics": ["fid"]}})
    assert [c["name"] for c in only_fid["metric_columns"]] == ["fid"]
    assert upgrade(new) is new  # current records pass through


def test_every_key_of_a_real_record_is_known(tmp_path, tiny_run):
    from ganbench.store.records import CORE_COLUMNS

    [record] = tiny_run(tmp_path, strategy="scratch", baseline=False).records
    declared = {c["name"] for c in record["metric_columns"]}
    provenance = {"inception_weights", "kid_mode"}  # the metrics' prepare(): recorded in the JSON only
    assert set(record) - CORE_COLUMNS - declared == provenance
