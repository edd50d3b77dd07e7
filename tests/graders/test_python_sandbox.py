"""python graders run in a confined process: these prove the confinement from the inside."""

from __future__ import annotations

import os

import pytest

from polytune.graders import GraderConfig, Grading, SandboxLimits, parse_grader

grading = Grading(GraderConfig(limits=SandboxLimits(cpu_seconds=1.0, timeout_seconds=2.0, memory_mb=256)))


def run(source: str, samples=(("x", {}),)):
    return grading.grade_batch(parse_grader({"type": "python", "name": "p", "source": source}), list(samples))


def test_grades_a_batch_with_sample_and_item():
    src = "def grade(sample, item):\n    return float(sample['output_text'] == item['answer'])\n"
    rewards = [r.reward for r in run(src, [("4", {"answer": "4"}), ("5", {"answer": "4"})])]
    assert rewards == [1.0, 0.0]


def test_an_exception_fails_that_sample_clearly():
    (r,) = run("def grade(sample, item):\n    raise ValueError('no answer here')\n")
    assert r.reward == 0.0 and r.errors["python_grader_runtime_error"]
    assert r.errors["python_grader_runtime_error_details"] == "ValueError: no answer here (line 2)"


@pytest.mark.parametrize(
    "loop",
    [
        "while True:\n        pass",
        "import time\n    time.sleep(60)",
        "try:\n        while True: pass\n    except BaseException:\n        while True: pass",
    ],
)
def test_a_grader_that_never_returns_is_stopped(loop):
    (r,) = run(f"def grade(sample, item):\n    {loop}\n")
    assert r.reward == 0.0 and r.errors["python_grader_server_error"]
    assert "time limit" in r.errors["python_grader_runtime_error_details"]


def test_memory_is_limited():
    (r,) = run("def grade(sample, item):\n    block = bytearray(1024 ** 3)\n    return 1.0\n")
    assert r.errors["python_grader_runtime_error"] and "MemoryError" in r.errors["python_grader_runtime_error_details"]


def test_files_outside_the_sandbox_are_out_of_reach(tmp_path):
    secret = tmp_path / "polytune.db"
    secret.write_text("server data")
    for action in (
        f"open({str(secret)!r}).read()",
        "open('/etc/passwd').read()",
        f"__import__('os').listdir({str(tmp_path)!r})",
        f"open({str(tmp_path / 'planted.txt')!r}, 'w').write('x')",
    ):
        (r,) = run(f"def grade(sample, item):\n    {action}\n    return 1.0\n")
        assert r.reward == 0.0 and "sandbox" in r.errors["python_grader_runtime_error_details"], action
    assert not (tmp_path / "planted.txt").exists()


def test_no_processes_no_network_no_ctypes():
    for action in (
        "__import__('subprocess').run(['true'])",
        "__import__('os').system('true')",
        "__import__('os').fork()",
        "__import__('socket').create_connection(('127.0.0.1', 5432))",
        "__import__('ctypes').CDLL(None).getpid()",
        "__import__('ctypes').c_int.from_address(8).value",
    ):
        (r,) = run(f"def grade(sample, item):\n    {action}\n    return 1.0\n")
        assert r.reward == 0.0 and r.errors["python_grader_runtime_error"], action
        assert "sandbox" in r.errors["python_grader_runtime_error_details"], r.errors


def test_environment_is_scrubbed_and_the_working_dir_is_its_own(monkeypatch):
    monkeypatch.setenv("POLYTUNE_DATABASE_URL", "postgresql://secret@db/prod")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    src = (
        "import os\n"
        "def grade(sample, item):\n"
        "    open('scratch.txt', 'w').write('ok')\n"
        "    leaked = [k for k in os.environ if 'POLYTUNE' in k or 'KEY' in k]\n"
        "    return float(not leaked and open('scratch.txt').read() == 'ok' and os.listdir('.') == ['scratch.txt'])\n"
    )
    (r,) = run(src)
    assert r.reward == 1.0, r.errors
    assert os.environ["POLYTUNE_DATABASE_URL"]  # the parent's own environment is untouched


def test_the_allowed_packages_import_and_the_rest_of_the_environment_does_not():
    src = (
        "import numpy, regex, rapidfuzz\n"
        "def grade(sample, item):\n"
        "    try:\n        import polytune\n    except ImportError:\n"
        "        return float(numpy.mean([1, 2, 3]) + len(regex.findall(r'\\p{L}', 'ab1')) + rapidfuzz.fuzz.ratio('a', 'a'))\n"
        "    return -1.0\n"
    )
    (r,) = run(src)
    assert r.reward == 2.0 + 2 + 100, r.errors
