"""How long an Oxen fine-tune's create spends turning its table into training examples
(data/tabular.py), by format and size. Prints a table."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from polytune.data.tabular import question_answer_examples

SIZES = (1_000, 10_000, 100_000)


def _table(n: int) -> pa.Table:
    return pa.table(
        {
            "question": [f"What is the value of item number {i}?" for i in range(n)],
            "answer": [f"Item {i} is worth {i * 7 % 1000} coins." for i in range(n)],
        }
    )


def main() -> None:
    # --smoke: the smallest size only (the test suite runs it).
    sizes = SIZES[:1] if "--smoke" in sys.argv[1:] else SIZES
    print(f"{'format':<8} {'rows':>8} {'seconds':>8} {'rows/s':>10}")
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            table = _table(n)
            paths = {"csv": Path(d) / f"t{n}.csv", "parquet": Path(d) / f"t{n}.parquet"}
            pacsv.write_csv(table, paths["csv"])
            pq.write_table(table, paths["parquet"])
            for fmt, path in paths.items():
                start = time.perf_counter()
                examples = question_answer_examples(
                    path, filename=path.name, question_column="question", answer_column="answer"
                )
                took = time.perf_counter() - start
                assert len(examples) == n
                print(f"{fmt:<8} {n:>8} {took:>8.2f} {n / took:>10,.0f}", flush=True)


if __name__ == "__main__":
    main()
