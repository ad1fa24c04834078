"""The record schema in one place: the typed record and docs/results-schema.md agree both ways, the reports read
only its fields, every record key the runner writes is a field or a declared metric column, ill-typed records
are damaged, and schema-1 records read as what they were."""

import re

from ganbench.store.records import SCHEMA_VERSION, result_columns
from ganbench.store.runs import upgrade
from ganbench.store.schema import FIELDS, IDENTITY_FIELDS, RECORD_FIELDS, RESULTS_FIELDS


def documented(doc: str, section: str, end: str) -> set[str]:
    """The names the first column of one table of docs/results-schema.md gives."""
    table = doc.split(section, 1)[1].split(end, 1)[0]
    return {name for line in table.splitlines() if line.startswith("| `")
            for name in re.findall(r"`([a-z0-9_]+)`", line.split(" | ")[0])}  # fmt: skip


def builtin_metric_columns() -> set[str]:
    from ganbench.plugin.manager import load_registry

    registry = load_registry()
    return {c.name for entry in registry.entries() if entry.kind == "metric" for c in entry.cls.columns}


def test_the_schema_page_documents_exactly_the_typed_record(root):
    doc = (root / "docs" / "results-schema.md").read_text()
    assert f"# Results schema (schema_version {SCHEMA_VERSION})" in doc
    columns = documented(doc, "## `results.csv` columns", "## Cell records")
    assert {*IDENTITY_FIELDS, *RESULTS_FIELDS} - columns == set(), "results.csv fields not documented"
    assert columns - {*IDENTITY_FIELDS, *RESULTS_FIELDS} == builtin_metric_columns(), "documented, not a column"
    json_only = documented(doc, "## Cell records", "## Leaderboard CSV")
    assert json_only == set(RECORD_FIELDS)


def test_the_reports_read_only_declared_fields_of_a_record(root):
    """Every ``record["x"]`` / ``record.get("x")`` in ganbench/report names a field of the typed record."""
    import ast

    read = set()
    for path in sorted((root / "ganbench" / "report").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                target, key = node.value, node.slice.value
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
                target, key = (
                    node.func.value,
                    node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None,
                )
            else:
                continue
            if isinstance(target, ast.Name) and target.id == "record" and isinstance(key, str):
                read.add((path.name, key))
    assert read, "the scan found no record reads: it is looking in the wrong place"
    assert {(module, key) for module, key in read if key not in FIELDS} == set()


def test_a_field_of_the_wrong_type_makes_a_record_damaged():
    from ganbench.store.runs import record_problem

    good = {"cell_id": "a", "status": "ok", "arch": "dcgan", "strategy": "finetune", "source": "s", "target": "t",
            "shots": 8, "seed": 0, "metric_columns": [], "threads": 2, "lr": 2e-4, "ema": 0, "error": None}  # fmt: skip
    assert record_problem(good) is None  # an integer where a number is declared is a number (JSON writes 0.0 as 0)
    assert record_problem({**good, "threads": "two"}) == "threads is 'two', not an integer"
    assert record_problem({**good, "compiled": 1}) == "compiled is 1, not true or false"
    assert record_problem({**good, "threads": True}) == "threads is True, not an integer"
    assert record_problem({**good, "spec": []}) == "spec is [], not an object"
    assert record_problem({**good, "finished_at": None}) == "finished_at is null"


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

    [record] = tiny_run(tmp_path, strategy="scratch").records
    declared = {c["name"] for c in record["metric_columns"]}
    provenance = {"inception_weights", "kid_mode"}  # the metrics' prepare(): recorded in the JSON only
    assert set(record) - CORE_COLUMNS - declared == provenance
