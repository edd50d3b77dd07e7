"""Dataset formats: detect, validate (streaming, line-numbered errors), convert, count tokens.

One file per job: problems.py (how a problem is told), jsonl.py (reading lines),
messages.py (the chat format shared by every conversational format), chat.py,
completion.py, preference.py, reinforcement.py (one per format family), formats.py (which
format a row is, which formats a method takes), validate.py (a whole file, streaming),
convert.py (to TRL), tokens.py (token accounting), tabular.py (CSV/Parquet/JSON columns),
inspect.py (the check at upload).
"""

from polytune.data.convert import iter_trl_rows, to_trl_rows, trl_dataset
from polytune.data.formats import FORMATS, METHOD_FORMATS, detect_format
from polytune.data.jsonl import iter_jsonl, read_rows
from polytune.data.problems import DatasetError
from polytune.data.validate import DatasetSummary, validate_file, validate_supervised_file

__all__ = [
    "FORMATS",
    "METHOD_FORMATS",
    "DatasetError",
    "DatasetSummary",
    "detect_format",
    "iter_jsonl",
    "iter_trl_rows",
    "read_rows",
    "to_trl_rows",
    "trl_dataset",
    "validate_file",
    "validate_supervised_file",
]
